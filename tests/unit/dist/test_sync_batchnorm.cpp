// SyncBatchNorm: ranks simulated as threads of one process with a fake all-reduce, checked against torch's own
// BatchNorm2d (training) on the concatenated batch; the models' dispatch helper with and without sync set.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/dist/sync_batchnorm.hpp"
#include "em/models/resnet.hpp"
#include "em/tensor/autocast.hpp"
#include "unit/models/model_test_support.hpp"

using em::dist::AllReduceSum;
using em::test::max_abs_diff;
using torch::Tensor;

namespace {

// The ranks' all-reduce within one process: each caller adds its tensor into a shared sum and blocks until all
// `world` callers of the round have; the last one publishes the sum, which every caller copies back. A round that
// does not complete within a minute throws rather than hang the test run.
class FakeAllReduce {
 public:
  explicit FakeAllReduce(int world) : world_(world) {}

  void operator()(Tensor& t) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t round = rounds_;
    sum_ = arrived_ == 0 ? t.clone() : sum_ + t;
    if (++arrived_ == world_) {
      result_ = sum_;  // sum_ is rebound, never written in place, by the next round: result_ stays until all read it
      arrived_ = 0;
      ++rounds_;
      done_.notify_all();
    } else if (!done_.wait_for(lock, std::chrono::minutes(1), [&] { return rounds_ != round; })) {
      throw std::runtime_error("fake all-reduce: the other ranks did not arrive");
    }
    t.copy_(result_);
  }

  AllReduceSum fn() {
    return [this](Tensor& t) { (*this)(t); };
  }

  int64_t rounds() {
    std::lock_guard<std::mutex> lock(mutex_);
    return rounds_;
  }

 private:
  const int world_;
  std::mutex mutex_;
  std::condition_variable done_;
  int arrived_ = 0;
  int64_t rounds_ = 0;
  Tensor sum_, result_;
};

// Runs fn(rank) on one thread per rank and rethrows the first rank's exception. Catch2's checks are not
// thread-safe: ranks only compute, the test checks after the join.
void run_ranks(int world, const std::function<void(int)>& fn) {
  std::vector<std::exception_ptr> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Sets the process-wide sync all-reduce for a scope.
struct SyncScope {
  explicit SyncScope(AllReduceSum fn) { em::dist::set_sync_batchnorm(std::move(fn)); }
  ~SyncScope() { em::dist::clear_sync_batchnorm(); }
};

torch::nn::BatchNorm2d copy_of(const torch::nn::BatchNorm2d& bn) {
  return torch::nn::BatchNorm2d(std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(bn->clone()));
}

struct Setup {
  std::vector<int64_t> local_batch{2, 2};
  bool channels_last = false;
  bool bf16 = false;  // input in bf16, under autocast
  c10::optional<double> momentum = 0.1;
  bool affine = true;
  int steps = 1;
};

// Largest differences between the ranks' SyncBatchNorm and native BatchNorm2d on the concatenated batch.
struct Differences {
  double output = 0, running_mean = 0, running_var = 0, grad_input = 0, grad_weight = 0, grad_bias = 0;
  double output_scale = 0, grad_input_scale = 0, grad_param_scale = 0;  // max |native| of each
  bool tracked_equal = true, layout_kept = true, dtype_kept = true;
  int64_t all_reduces = 0;  // rounds of the fake all-reduce over all steps
};

void widen(double& max, double value) { max = std::max(max, value); }

// One training step of native BatchNorm2d on the global batch and of sync_batch_norm on its per-rank slices.
//
// Gradient scaling: native minimises L = sum(y * coef) / N over the global batch of N images. Under data
// parallelism rank r minimises L_r = world * sum(y_r * coef_r) / N, and DDP averages the ranks' parameter gradients:
// (1 / world) * sum_r dL_r/dp = d(sum(y * coef) / N)/dp = dL/dp, for any split of N (unequal ones too).
// SyncBatchNorm's backward differentiates the sum of all ranks' losses, sum_r L_r = world * L (the all-reduce
// brings the other ranks' dy in), so rank r's grad_input is world times native's on its slice; the layers below
// turn it into parameter gradients that DDP's average divides by world again.
void step(const Setup& s, torch::nn::BatchNorm2d& native, std::vector<torch::nn::BatchNorm2d>& ranks,
          FakeAllReduce& fake, Differences& d) {
  const int world = static_cast<int>(s.local_batch.size());
  int64_t n = 0;
  for (auto b : s.local_batch) n += b;
  // Off-centre input (mean 5, std 3): the statistics must not lose the variance to cancellation.
  Tensor x = torch::randn({n, 4, 5, 7}) * 3 + 5;
  if (s.bf16) x = x.to(torch::kBFloat16).to(torch::kFloat);  // native sees the values the ranks see
  const Tensor coef = torch::randn({n, 4, 5, 7});

  native->zero_grad();
  Tensor xg = x.clone().requires_grad_();
  Tensor y = native->forward(xg);
  ((y * coef).sum() / n).backward();

  std::vector<Tensor> ys(world), grads(world);
  std::vector<int64_t> offset(world, 0);
  for (int r = 1; r < world; ++r) offset[r] = offset[r - 1] + s.local_batch[r - 1];
  for (auto& bn : ranks) bn->zero_grad();
  const AllReduceSum all_reduce_sum = fake.fn();
  run_ranks(world, [&](int r) {
    Tensor xr = x.narrow(0, offset[r], s.local_batch[r]).clone();
    if (s.channels_last) xr = xr.contiguous(torch::MemoryFormat::ChannelsLast);
    if (s.bf16) xr = xr.to(torch::kBFloat16);
    xr.requires_grad_();
    em::tensor::Bf16Autocast autocast(s.bf16);
    ys[r] = em::dist::sync_batch_norm(xr, *ranks[r], all_reduce_sum);
    const Tensor coef_r = coef.narrow(0, offset[r], s.local_batch[r]);
    ((ys[r].to(torch::kFloat) * coef_r).sum() * world / n).backward();
    grads[r] = xr.grad();
  });

  for (int r = 0; r < world; ++r) {
    if (s.local_batch[r] > 0 && s.channels_last != ys[r].is_contiguous(torch::MemoryFormat::ChannelsLast))
      d.layout_kept = false;
    const auto type = s.bf16 ? torch::kBFloat16 : torch::kFloat;
    if (ys[r].scalar_type() != type || grads[r].scalar_type() != type) d.dtype_kept = false;
  }

  widen(d.output, max_abs_diff(torch::cat(ys).to(torch::kFloat), y));
  widen(d.output_scale, y.abs().max().item<double>());
  widen(d.grad_input, max_abs_diff(torch::cat(grads).to(torch::kFloat) / world, xg.grad()));
  widen(d.grad_input_scale, xg.grad().abs().max().item<double>());
  if (s.affine) {
    Tensor grad_weight = torch::zeros_like(native->weight), grad_bias = torch::zeros_like(native->bias);
    for (auto& bn : ranks) {
      grad_weight += bn->weight.grad() / world;
      grad_bias += bn->bias.grad() / world;
    }
    widen(d.grad_weight, max_abs_diff(grad_weight, native->weight.grad()));
    widen(d.grad_bias, max_abs_diff(grad_bias, native->bias.grad()));
    widen(d.grad_param_scale, std::max(native->weight.grad().abs().max().item<double>(),
                                       native->bias.grad().abs().max().item<double>()));
  }
  for (auto& bn : ranks) {
    widen(d.running_mean, max_abs_diff(bn->running_mean, native->running_mean));
    widen(d.running_var, max_abs_diff(bn->running_var, native->running_var));
    if (!torch::equal(bn->num_batches_tracked, native->num_batches_tracked)) d.tracked_equal = false;
  }
}

Differences compare_with_native(const Setup& s) {
  torch::manual_seed(7);
  torch::nn::BatchNorm2d native(torch::nn::BatchNorm2dOptions(4).momentum(s.momentum).affine(s.affine));
  {
    torch::NoGradGuard no_grad;
    if (s.affine) {
      native->weight.uniform_(0.5, 1.5);
      native->bias.normal_();
    }
    native->running_mean.normal_();
    native->running_var.uniform_(0.5, 2);
  }
  std::vector<torch::nn::BatchNorm2d> ranks;
  for (size_t r = 0; r < s.local_batch.size(); ++r) ranks.push_back(copy_of(native));
  FakeAllReduce fake(static_cast<int>(s.local_batch.size()));
  Differences d;
  for (int i = 0; i < s.steps; ++i) step(s, native, ranks, fake, d);
  d.all_reduces = fake.rounds();
  return d;
}

void check_fp32(const Differences& d, int steps = 1) {
  CHECK(d.output <= 1e-5);
  CHECK(d.running_mean <= 1e-5);
  CHECK(d.running_var <= 1e-5);
  CHECK(d.tracked_equal);
  CHECK(d.grad_input <= 1e-6);
  CHECK(d.grad_weight <= 1e-5);  // sums over the batch of terms ~1: fp32 rounding ~1e-7 each
  CHECK(d.grad_bias <= 1e-5);
  CHECK(d.layout_kept);
  CHECK(d.dtype_kept);
  CHECK(d.all_reduces == 2 * steps);  // one in forward, one in backward
}

}  // namespace

TEST_CASE("sync batch norm over 2 ranks equals native BatchNorm2d on the whole batch: output, running stats, grads",
          "[dist][sync_batchnorm]") {
  check_fp32(compare_with_native(Setup{}));
}

TEST_CASE("sync batch norm matches native over steps with momentum unset (cumulative average) and affine=false",
          "[dist][sync_batchnorm]") {
  Setup s;
  s.momentum = c10::optional<double>();
  s.affine = false;
  s.steps = 3;
  check_fp32(compare_with_native(s), s.steps);
}

TEST_CASE("sync batch norm: unequal, tiny and empty local batches still match native over the global batch",
          "[dist][sync_batchnorm]") {
  for (const auto& split : std::vector<std::vector<int64_t>>{{3, 5}, {1, 7}, {0, 4}, {2, 3, 1}}) {
    INFO("local batches " << torch::IntArrayRef(split));
    Setup s;
    s.local_batch = split;
    check_fp32(compare_with_native(s));
  }
}

TEST_CASE("sync batch norm keeps channels-last input channels-last and matches native", "[dist][sync_batchnorm]") {
  Setup s;
  s.local_batch = {3, 5};
  s.channels_last = true;
  check_fp32(compare_with_native(s));
}

TEST_CASE("sync batch norm of bf16 input under autocast gives bf16 close to native fp32", "[dist][sync_batchnorm]") {
  for (bool channels_last : {false, true}) {
    INFO("channels_last " << channels_last);
    Setup s;
    s.local_batch = {3, 5};
    s.bf16 = true;
    s.channels_last = channels_last;
    const Differences d = compare_with_native(s);
    // bf16 keeps 8 significant bits: outputs and input gradients round to ~0.4% of their size.
    CHECK(d.output <= 0.01 * d.output_scale);
    CHECK(d.grad_input <= 0.01 * d.grad_input_scale);
    CHECK(d.running_mean <= 1e-5);  // statistics are computed in fp64 from the bf16 values
    CHECK(d.running_var <= 1e-5);
    CHECK(d.grad_weight <= 0.01 * d.grad_param_scale);
    CHECK(d.grad_bias <= 0.01 * d.grad_param_scale);
    CHECK(d.tracked_equal);
    CHECK(d.layout_kept);
    CHECK(d.dtype_kept);
  }
}

TEST_CASE("sync batch norm refuses one value per channel over all ranks and a wrong channel count",
          "[dist][sync_batchnorm]") {
  torch::nn::BatchNorm2d bn(4);
  FakeAllReduce fake(1);
  CHECK_THROWS_AS(em::dist::sync_batch_norm(torch::randn({1, 4, 1, 1}), *bn, fake.fn()), em::Error);
  CHECK_THROWS_WITH(em::dist::sync_batch_norm(torch::randn({2, 3, 5, 5}), *bn, fake.fn()),
                    Catch::Matchers::Contains("[N, 4, H, W]") && Catch::Matchers::Contains("[2, 3, 5, 5]"));
  // One value on each of two ranks is two over the global batch: that works.
  FakeAllReduce fake2(2);
  std::vector<torch::nn::BatchNorm2d> ranks{copy_of(bn), copy_of(bn)};
  std::vector<Tensor> ys(2);
  run_ranks(2, [&](int r) {
    ys[r] = em::dist::sync_batch_norm(torch::full({1, 4, 1, 1}, static_cast<float>(r)), *ranks[r], fake2.fn());
  });
  CHECK(max_abs_diff(torch::cat(ys), torch::cat({torch::full({1, 4, 1, 1}, -1.0), torch::full({1, 4, 1, 1}, 1.0)})) <=
        1e-2);  // (x - 0.5) / sqrt(0.25 + eps)
}

TEST_CASE("batch_norm_2d without sync set is bn.forward bit for bit: output, running stats and gradients",
          "[dist][sync_batchnorm]") {
  torch::manual_seed(3);
  torch::nn::BatchNorm2d a(6);
  {
    torch::NoGradGuard no_grad;
    a->weight.uniform_(0.5, 1.5);
    a->bias.normal_();
  }
  auto b = copy_of(a);
  for (bool training : {true, false}) {
    INFO("training " << training);
    a->train(training);
    b->train(training);
    const Tensor x = torch::randn({3, 6, 4, 5}) * 2 + 1;
    Tensor xa = x.clone().requires_grad_(), xb = x.clone().requires_grad_();
    const Tensor ya = em::dist::batch_norm_2d(*a, xa), yb = b->forward(xb);
    CHECK(torch::equal(ya, yb));
    ya.square().sum().backward();
    yb.square().sum().backward();
    CHECK(torch::equal(xa.grad(), xb.grad()));
    CHECK(torch::equal(a->weight.grad(), b->weight.grad()));
    CHECK(torch::equal(a->running_mean, b->running_mean));
    CHECK(torch::equal(a->running_var, b->running_var));
    CHECK(torch::equal(a->num_batches_tracked, b->num_batches_tracked));
  }
}

TEST_CASE("batch_norm_2d with sync set all-reduces in training only and is bn.forward in eval",
          "[dist][sync_batchnorm]") {
  FakeAllReduce fake(1);
  SyncScope sync(fake.fn());
  torch::nn::BatchNorm2d bn(3);
  const Tensor x = torch::randn({2, 3, 4, 4});
  auto reference = copy_of(bn);
  CHECK(max_abs_diff(em::dist::batch_norm_2d(*bn, x), reference->forward(x)) <= 1e-5);
  CHECK(fake.rounds() == 1);
  bn->eval();
  reference->eval();
  {  // the same running statistics (training updated them in fp64 vs fp32: they may differ in the last bit)
    torch::NoGradGuard no_grad;
    reference->running_mean.copy_(bn->running_mean);
    reference->running_var.copy_(bn->running_var);
  }
  CHECK(torch::equal(em::dist::batch_norm_2d(*bn, x), reference->forward(x)));
  CHECK(fake.rounds() == 1);
}

TEST_CASE("a resnet trained on 2 ranks with sync batch norm set matches one process on the whole batch",
          "[dist][sync_batchnorm][resnet]") {
  em::models::ResNetConfig config;
  config.embedding_size = 8;
  config.hidden_sizes = {16, 32};
  config.depths = {1, 2};
  config.layer_type = "bottleneck";
  config.set_labels(em::test::numbered_labels(3));
  auto model_with_seed = [&] {
    torch::manual_seed(11);
    return em::models::ResNetForImageClassification(config);
  };
  auto native = model_with_seed();
  std::vector<em::models::ResNetForImageClassification> ranks{model_with_seed(), model_with_seed()};
  torch::manual_seed(12);
  const Tensor x = torch::randn({4, 3, 32, 32});
  const Tensor labels = torch::tensor({0, 2, 1, 1});
  const std::vector<int64_t> offset{0, 3}, local{3, 1};
  const int world = 2;

  // Native: the mean loss over the batch. Rank r: world / N times its summed loss (see step() above on scaling).
  Tensor logits = native->forward(x);
  torch::nn::functional::cross_entropy(logits, labels).backward();

  FakeAllReduce fake(world);
  std::vector<Tensor> rank_logits(world);
  {
    SyncScope sync(fake.fn());
    run_ranks(world, [&](int r) {
      rank_logits[r] = ranks[r]->forward(x.narrow(0, offset[r], local[r]));
      namespace F = torch::nn::functional;
      auto loss = F::cross_entropy(rank_logits[r], labels.narrow(0, offset[r], local[r]),
                                   F::CrossEntropyFuncOptions().reduction(torch::kSum));
      (loss * world / x.size(0)).backward();
    });
  }
  const double logits_diff = max_abs_diff(torch::cat(rank_logits), logits);
  INFO("max |logits - native| = " << logits_diff);
  CHECK(logits_diff <= 1e-4);

  double grad_diff = 0, grad_scale = 0, buffer_diff = 0;
  for (const auto& p : native->named_parameters()) {
    Tensor averaged = torch::zeros_like(p.value());
    for (auto& m : ranks) averaged += m->named_parameters()[p.key()].grad() / world;
    widen(grad_diff, max_abs_diff(averaged, p.value().grad()));
    widen(grad_scale, p.value().grad().abs().max().item<double>());
  }
  for (const auto& b : native->named_buffers())
    for (auto& m : ranks) widen(buffer_diff, max_abs_diff(m->named_buffers()[b.key()], b.value()));
  INFO("max |averaged grad - native| = " << grad_diff << " of max |grad| " << grad_scale);
  CHECK(grad_diff <= 1e-4 * grad_scale);
  INFO("max |running stats - native| = " << buffer_diff);
  CHECK(buffer_diff <= 1e-4);
  int64_t batch_norms = 0;
  for (const auto& m : native->modules()) batch_norms += m->as<torch::nn::BatchNorm2d>() != nullptr;
  CHECK(batch_norms == 12);
  CHECK(fake.rounds() == 2 * batch_norms);  // one all-reduce in forward and one in backward per layer
}
