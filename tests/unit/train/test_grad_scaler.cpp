// The fp16 loss scaler: scale/unscale round trip, a step skipped with the scale backed off on inf/nan, growth after
// growth_interval clean steps, and its state through a checkpoint, as torch.cuda.amp.GradScaler.
#include <catch2/catch.hpp>

#include <limits>

#include "em/core/error.hpp"
#include "em/train/grad_scaler.hpp"
#include "unit/tensor/device_test_support.hpp"

using em::train::GradScaler;
using em::train::GradScalerOptions;

namespace {
// A parameter whose gradient is `grad`.
torch::Tensor param_with_grad(const torch::Tensor& grad) {
  torch::Tensor p = torch::zeros_like(grad).requires_grad_(true);
  p.mutable_grad() = grad.clone();
  return p;
}
}  // namespace

TEST_CASE("grad scaler: the scaled loss's gradients unscale back to the unscaled ones", "[train][grad_scaler]") {
  GradScaler scaler;
  CHECK(scaler.get_scale() == 65536.0);
  torch::Tensor w = torch::tensor({0.5f, -2.0f, 3.0f}).requires_grad_(true);
  torch::Tensor x = torch::tensor({1.0f, 2.0f, -1.0f});
  torch::Tensor loss = (w * x).sum() * 1e-3;
  torch::Tensor scaled = scaler.scale(loss);
  CHECK(scaled.item<double>() == Approx(loss.item<double>() * 65536.0));
  scaled.backward();
  CHECK(w.grad()[1].item<double>() == Approx(2e-3 * 65536.0));
  CHECK(scaler.unscale_({w}));
  CHECK(torch::allclose(w.grad(), x * 1e-3));
  // A second unscale_ in the same step changes nothing (clipping unscales first, step() after).
  CHECK(scaler.unscale_({w}));
  CHECK(torch::allclose(w.grad(), x * 1e-3));
  bool stepped = false;
  CHECK(scaler.step({w}, [&] { stepped = true; }));
  CHECK(stepped);
  scaler.update();
  CHECK(scaler.get_scale() == 65536.0);
  CHECK(scaler.growth_tracker() == 1);
  CHECK(scaler.skipped_steps() == 0);
}

TEST_CASE("grad scaler: inf or nan gradients skip the step and back the scale off", "[train][grad_scaler]") {
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    INFO(bad);
    GradScaler scaler(GradScalerOptions{1024.0, 2.0, 0.5, 3});
    torch::Tensor fine = param_with_grad(torch::ones({4}));
    torch::Tensor broken = param_with_grad(torch::tensor({1.0f, bad}));
    torch::Tensor no_grad = torch::zeros({2}).requires_grad_(true);  // took no part: skipped
    scaler.update();  // one clean step first: the tracker restarts on the bad one
    CHECK(scaler.growth_tracker() == 1);
    bool stepped = false;
    CHECK_FALSE(scaler.step({fine, no_grad, broken}, [&] { stepped = true; }));
    CHECK_FALSE(stepped);
    scaler.update();
    CHECK(scaler.get_scale() == 512.0);
    CHECK(scaler.growth_tracker() == 0);
    CHECK(scaler.skipped_steps() == 1);
    // The next clean step runs again.
    torch::Tensor ok = param_with_grad(torch::full({2}, 512.0f));
    CHECK(scaler.step({ok}, [&] { stepped = true; }));
    CHECK(stepped);
    CHECK(torch::allclose(ok.grad(), torch::ones({2})));
  }
}

TEST_CASE("grad scaler: the scale grows after growth_interval clean steps in a row", "[train][grad_scaler]") {
  GradScaler scaler(GradScalerOptions{8.0, 2.0, 0.5, 3});
  auto clean_step = [&] {
    torch::Tensor p = param_with_grad(torch::ones({2}));
    scaler.step({p}, [] {});
    scaler.update();
  };
  clean_step();
  clean_step();
  CHECK(scaler.get_scale() == 8.0);
  clean_step();
  CHECK(scaler.get_scale() == 16.0);
  CHECK(scaler.growth_tracker() == 0);
  for (int i = 0; i < 3; ++i) clean_step();
  CHECK(scaler.get_scale() == 32.0);
}

TEST_CASE("grad scaler: disabled, it changes nothing and every step runs", "[train][grad_scaler]") {
  GradScalerOptions options;
  options.enabled = false;
  GradScaler scaler(options);
  torch::Tensor loss = torch::tensor(2.0f);
  CHECK(scaler.scale(loss).is_same(loss));
  torch::Tensor p = param_with_grad(torch::tensor({std::numeric_limits<float>::infinity()}));
  bool stepped = false;
  CHECK(scaler.step({p}, [&] { stepped = true; }));
  CHECK(stepped);
  scaler.update();
  CHECK(scaler.state().empty());
}

TEST_CASE("grad scaler: its state survives a checkpoint; bad state names the file and field", "[train][grad_scaler]") {
  GradScaler a(GradScalerOptions{4096.0, 2.0, 0.5, 5});
  torch::Tensor p = param_with_grad(torch::ones({1}));
  a.step({p}, [] {});
  a.update();
  a.step({p}, [] {});
  a.update();
  const em::io::Json state = em::io::parse_json(em::io::dump_json(a.state()), "scaler.json");
  CHECK(state["scale"] == 4096.0);
  CHECK(state["_growth_tracker"] == 2);
  CHECK(state["growth_interval"] == 5);
  GradScaler b;
  b.load_state(state, "checkpoint-2/scaler.json");
  CHECK(b.get_scale() == 4096.0);
  CHECK(b.growth_tracker() == 2);
  for (int i = 0; i < 3; ++i) {
    b.step({p}, [] {});
    b.update();
  }
  CHECK(b.get_scale() == 8192.0);  // grew at the interval of the restored run (5), not the default 2000

  em::io::Json bad = state;
  bad["scale"] = -1;
  CHECK_THROWS_WITH(b.load_state(bad, "ck/scaler.json"), Catch::StartsWith("ck/scaler.json: ") && Catch::Contains("\"scale\""));
  bad = state;
  bad.erase("_growth_tracker");
  CHECK_THROWS_WITH(b.load_state(bad, "ck/scaler.json"), Catch::Contains("_growth_tracker"));
  CHECK_THROWS_AS(GradScaler(GradScalerOptions{1.0, 0.5, 0.5, 10}), em::UsageError);
}

TEST_CASE("grad scaler: the same on CUDA gradients", "[train][grad_scaler][cuda]") {
  const auto device = em::test::cuda_test_device();
  if (!device) return;
  GradScaler scaler(GradScalerOptions{256.0, 2.0, 0.5, 2});
  torch::Tensor p = param_with_grad(torch::full({8}, 256.0f, torch::TensorOptions().device(*device)));
  CHECK(scaler.unscale_({p}));
  CHECK(torch::allclose(p.grad().cpu(), torch::ones({8})));
  scaler.update();
  torch::Tensor q = param_with_grad(torch::tensor({1.0f, std::numeric_limits<float>::infinity()}).to(*device));
  CHECK_FALSE(scaler.unscale_({q}));
  scaler.update();
  CHECK(scaler.get_scale() == 128.0);
}
