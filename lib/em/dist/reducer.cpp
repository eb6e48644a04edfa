#include "em/dist/reducer.hpp"

#include <chrono>
#include <map>

#include "em/core/error.hpp"

namespace em::dist {

void broadcast_from_rank0(Group& group, const std::vector<torch::Tensor>& tensors) {
  if (group.single() || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, list] : by_type) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : list) flat_parts.push_back(t.reshape(-1));
    torch::Tensor flat = torch::cat(flat_parts);
    group.broadcast(flat, 0);
    int64_t offset = 0;
    for (auto& t : list) {
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

GradientReducer::GradientReducer(Group& group, std::vector<torch::Tensor> params, size_t bucket_bytes,
                                 size_t first_bucket_bytes)
    : group_(group), params_(std::move(params)) {
  const size_t n = params_.size();
  bucket_of_.resize(n);
  slot_of_.resize(n);
  arrived_.assign(n, false);
  // Buckets over the parameters in reverse (the order backward produces them), split at the byte cap or a dtype change.
  size_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const size_t p_bytes = static_cast<size_t>(p.numel()) * p.element_size();
    const size_t cap = buckets_.size() <= 1 ? first_bucket_bytes : bucket_bytes;
    const bool new_bucket = buckets_.empty() || (bytes > 0 && bytes + p_bytes > cap) ||
                            params_[buckets_.back().params.front()].scalar_type() != p.scalar_type();
    if (new_bucket) buckets_.emplace_back(), bytes = 0;
    Bucket& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = b.params.size();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(k);
    bytes += p_bytes;
  }
  for (Bucket& b : buckets_) {
    const torch::Tensor& last = params_[b.params.back()];
    b.flat = torch::zeros({b.offsets.back() + last.numel()}, last.options().requires_grad(false));
  }
  if (group_.single()) return;  // nothing to reduce: no hooks
  for (size_t k = 0; k < n; ++k)
    hooks_.push_back(params_[k].register_hook([this, k](torch::Tensor grad) { on_gradient(k, grad); }));
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradientReducer::on_gradient(size_t index, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& b = buckets_[bucket_of_[index]];
  const size_t slot = slot_of_[index];
  torch::Tensor dst = b.flat.narrow(0, b.offsets[slot], params_[index].numel()).view(params_[index].sizes());
  torch::NoGradGuard no_grad;
  if (arrived_[index]) {  // a second gradient for the same parameter in one backward: they add up, as in .grad
    dst.add_(grad);
    return;
  }
  dst.copy_(grad);
  arrived_[index] = true;
  ++b.ready;
  launch_ready_buckets();
}

void GradientReducer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    Bucket& b = buckets_[next_launch_++];
    b.work = group_.all_reduce_sum_async(b.flat);
  }
}

void GradientReducer::finish() {
  if (group_.single()) return;
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Parameters that got no gradient on this rank contribute zeros, so every rank launches every bucket in order.
    for (size_t k = 0; k < params_.size(); ++k) {
      if (arrived_[k]) continue;
      Bucket& b = buckets_[bucket_of_[k]];
      b.flat.narrow(0, b.offsets[slot_of_[k]], params_[k].numel()).zero_();
      ++b.ready;
    }
    launch_ready_buckets();
  }
  const double scale = 1.0 / group_.size();
  for (Bucket& b : buckets_) {
    group_.wait(*b.work);
    b.work.reset();
    b.ready = 0;
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      const size_t k = b.params[slot];
      torch::Tensor& p = params_[k];
      torch::Tensor mean = b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes()).mul(scale);
      if (p.grad().defined())
        p.mutable_grad().copy_(mean);
      else if (arrived_[k] || mean.abs().max().item<double>() > 0)  // no rank used it: stays without a gradient
        p.mutable_grad() = mean.clone();
      arrived_[k] = false;
    }
  }
  next_launch_ = 0;
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++steps_;
}

}  // namespace em::dist
