#include "em/dist/sync_batchnorm.hpp"

#include <tuple>

#include <fmt/ranges.h>
#include <torch/custom_class.h>
#include <torch/torch.h>

#include "em/core/error.hpp"

namespace em::dist {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

AllReduceSum process_all_reduce_sum;  // set_sync_batchnorm

// Elementwise work runs in fp32 (fp64 for fp64 input): in bf16 every intermediate would be rounded.
torch::ScalarType compute_type(const Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// A per-channel vector [C] as [1, C, 1, 1] of `type`, to broadcast over x in either memory format.
Tensor per_channel(const Tensor& v, torch::ScalarType type) { return v.to(type).view({1, -1, 1, 1}); }

// invstd * weight per channel, fp64: the factor on (x - mean) in forward and on the gradient in backward.
Tensor channel_scale(const Tensor& invstd, const Tensor& weight) {
  return weight.defined() ? invstd * weight.to(torch::kDouble) : invstd;
}

// The autograd context carries only IValues from forward to backward; a registered custom class is the public way
// to carry a C++ object (the all-reduce) in one.
struct AllReduceHolder : torch::CustomClassHolder {
  explicit AllReduceHolder(AllReduceSum f) : fn(std::move(f)) {}
  AllReduceSum fn;
};

c10::IValue hold(const AllReduceSum& fn) {
  static const torch::class_<AllReduceHolder> registered("em_dist", "AllReduceSum");
  (void)registered;
  return c10::IValue(c10::make_intrusive<AllReduceHolder>(fn));
}

// Per-channel statistics of the global batch, fp64: mean, biased variance, and the count ([1]) of values per channel.
struct GlobalStats {
  Tensor mean, var, count;
};

void check_input(const Tensor& x, const torch::nn::BatchNorm2dImpl& bn) {
  if (x.dim() != 4 || x.size(1) != bn.options.num_features())
    fail("sync batch norm: expected input [N, {}, H, W], got [{}]", bn.options.num_features(),
         fmt::join(x.sizes(), ", "));
}

GlobalStats global_stats(const Tensor& x, const AllReduceSum& all_reduce_sum) {
  const int64_t channels = x.size(1);
  const double local_count = static_cast<double>(x.numel() / channels);
  const auto f64 = x.options().dtype(torch::kDouble);
  Tensor sum = torch::zeros({channels}, f64), sum_sq = torch::zeros({channels}, f64);
  if (local_count > 0) {
    // Local mean and variance (Welford) first, then the sums: squares summed in fp32 would lose the variance to
    // cancellation where |mean| >> std.
    Tensor var, mean;
    std::tie(var, mean) = torch::var_mean(x.to(compute_type(x)), {0, 2, 3}, /*unbiased=*/false);
    mean = mean.to(torch::kDouble);
    sum = mean * local_count;
    sum_sq = (var.to(torch::kDouble) + mean * mean) * local_count;
  }
  Tensor packed = torch::cat({sum, sum_sq, torch::full({1}, local_count, f64)});
  all_reduce_sum(packed);
  GlobalStats s;
  s.count = packed.slice(0, 2 * channels);
  s.mean = packed.slice(0, 0, channels) / s.count;
  s.var = (packed.slice(0, channels, 2 * channels) / s.count - s.mean * s.mean).clamp_min(0);
  // As torch's BatchNorm, refuse a single value per channel. The global count is read only where this rank's count
  // allows it to be <= 1 (then every rank's does, and all fail alike): a read on CUDA would stall the stream.
  if (local_count <= 1 && s.count.item<double>() <= 1)
    fail("sync batch norm: expected more than 1 value per channel over all ranks in training, got {} (input [{}])",
         s.count.item<double>(), fmt::join(x.sizes(), ", "));
  return s;
}

// As torch's BatchNorm in training: momentum, or the cumulative average when momentum is unset; running_var takes
// the unbiased variance.
void update_running_stats(torch::nn::BatchNorm2dImpl& bn, const GlobalStats& s) {
  if (!bn.options.track_running_stats()) return;
  double factor = bn.options.momentum() ? *bn.options.momentum() : 0.0;
  if (bn.num_batches_tracked.defined()) {
    bn.num_batches_tracked += 1;
    if (!bn.options.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  const Tensor unbiased_var = s.var * s.count / (s.count - 1);
  bn.running_mean.copy_(bn.running_mean.to(torch::kDouble) * (1 - factor) + s.mean * factor);
  bn.running_var.copy_(bn.running_var.to(torch::kDouble) * (1 - factor) + unbiased_var * factor);
}

// dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) * invstd * weight, the means over the global
// batch: the statistics depend on every rank's x, so the other ranks' dy reach this rank's dx through them.
Tensor global_grad_input(const Tensor& dy, Tensor xmu, const Tensor& sum_dy, const Tensor& sum_dy_xmu,
                         const Tensor& invstd, const Tensor& weight, const Tensor& count,
                         const AllReduceSum& all_reduce_sum) {
  const auto type = dy.scalar_type();
  const int64_t channels = sum_dy.size(0);
  Tensor packed = torch::cat({sum_dy, sum_dy_xmu});
  all_reduce_sum(packed);
  const Tensor mean_dy = packed.slice(0, 0, channels) / count;
  const Tensor mean_dy_xmu = packed.slice(0, channels) / count;
  return (dy - xmu.mul_(per_channel(invstd * invstd * mean_dy_xmu, type)))
      .sub_(per_channel(mean_dy, type))
      .mul_(per_channel(channel_scale(invstd, weight), type));
}

// An autograd input that may be absent (affine=false): LibTorch 1.13 rejects undefined tensors as inputs.
c10::optional<Tensor> optional(const Tensor& t) {
  return t.defined() ? c10::optional<Tensor>(t) : c10::optional<Tensor>();
}

// y = (x - mean) * invstd * weight + bias with the global statistics; backward over the global batch.
struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const c10::optional<Tensor>& optional_weight,
                        const c10::optional<Tensor>& optional_bias, const Tensor& mean, const Tensor& invstd,
                        const Tensor& count, const AllReduceSum& all_reduce_sum) {
    const Tensor weight = optional_weight ? *optional_weight : Tensor();
    const Tensor bias = optional_bias ? *optional_bias : Tensor();
    const auto type = compute_type(x);
    const Tensor scale = channel_scale(invstd, weight);
    Tensor shift = -mean * scale;
    if (bias.defined()) shift += bias.to(torch::kDouble);
    ctx->save_for_backward({x, weight, bias, mean, invstd, count});
    ctx->saved_data["all_reduce_sum"] = hold(all_reduce_sum);
    return (x.to(type) * per_channel(scale, type)).add_(per_channel(shift, type)).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1], &bias = saved[2], &mean = saved[3], &invstd = saved[4],
                 &count = saved[5];
    const auto type = compute_type(x);
    const Tensor dy = grads[0].to(type);
    Tensor xmu = x.to(type) - per_channel(mean, type);
    const Tensor sum_dy = dy.sum({0, 2, 3}).to(torch::kDouble);
    const Tensor sum_dy_xmu = (dy * xmu).sum({0, 2, 3}).to(torch::kDouble);
    Tensor grad_input, grad_weight, grad_bias;
    // Every rank runs the same model, so all agree on whether this all-reduce happens.
    if (ctx->needs_input_grad(0)) {
      const auto holder = ctx->saved_data["all_reduce_sum"].toCustomClass<AllReduceHolder>();
      grad_input = global_grad_input(dy, std::move(xmu), sum_dy, sum_dy_xmu, invstd, weight, count, holder->fn)
                       .to(x.scalar_type());
    }
    // Local sums: data-parallel training averages parameter gradients over ranks afterwards.
    if (weight.defined()) grad_weight = (sum_dy_xmu * invstd).to(weight.scalar_type());
    if (bias.defined()) grad_bias = sum_dy.to(bias.scalar_type());
    return {grad_input, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor sync_batch_norm(const Tensor& x, torch::nn::BatchNorm2dImpl& bn, const AllReduceSum& all_reduce_sum) {
  check_input(x, bn);
  GlobalStats stats;
  Tensor invstd;
  {
    torch::NoGradGuard no_grad;
    stats = global_stats(x, all_reduce_sum);
    update_running_stats(bn, stats);
    invstd = (stats.var + bn.options.eps()).rsqrt();
  }
  return SyncBatchNormFunction::apply(x, optional(bn.weight), optional(bn.bias), stats.mean, invstd, stats.count,
                                      all_reduce_sum);
}

void set_sync_batchnorm(AllReduceSum fn) { process_all_reduce_sum = std::move(fn); }

void clear_sync_batchnorm() { process_all_reduce_sum = nullptr; }

Tensor batch_norm_2d(torch::nn::BatchNorm2dImpl& bn, const Tensor& x) {
  if (process_all_reduce_sum && bn.is_training()) return sync_batch_norm(x, bn, process_all_reduce_sum);
  return bn.forward(x);
}

}  // namespace em::dist
