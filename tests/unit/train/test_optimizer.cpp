// Fused AdamW against LibTorch's own torch::optim::AdamW (the C++ twin of torch.optim.AdamW), and its resumable state.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/train/optimizer.hpp"

#include <ATen/Parallel.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <type_traits>

using namespace em::train;

namespace {

// A parameter set covering every path: fp32 contiguous with an odd size (vector tail), channels_last with a
// channels_last grad (fused over raw memory), channels_last with a contiguous grad and an fp64 param (op-by-op
// fallback), a transposed (non-contiguous but dense) param, and one that gets no gradient on odd steps.
struct Setup {
  std::vector<std::string> names{"w.linear", "w.conv_cl", "w.conv_cl_contig_grad", "b.bias", "w.t", "w.f64", "w.sometimes"};
  std::vector<torch::Tensor> params;
  std::vector<std::vector<torch::Tensor>> grads;  // [step][param]; undefined = no grad that step

  explicit Setup(int steps) {
    torch::manual_seed(7);
    params = {torch::randn({64, 33}),
              torch::randn({8, 4, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast),
              torch::randn({6, 5, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast),
              torch::randn({7}),
              torch::randn({9, 13}).t(),
              torch::randn({5, 3}, torch::kFloat64),
              torch::randn({21})};
    for (int s = 0; s < steps; ++s) {
      std::vector<torch::Tensor> g;
      for (size_t i = 0; i < params.size(); ++i) {
        torch::Tensor gi = torch::randn(params[i].sizes(), params[i].options()) * (0.1 + 0.1 * s);
        if (i == 1) gi = gi.contiguous(torch::MemoryFormat::ChannelsLast);
        if (i == 2) gi = gi.contiguous();
        if (i == 4) gi = torch::randn({9, 13}).t();  // same strides as the param
        if (i == 6 && s % 2 == 1) gi = torch::Tensor();
        g.push_back(gi);
      }
      grads.push_back(g);
    }
  }
  std::vector<torch::Tensor> clone_params() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : params) out.push_back(p.clone(torch::MemoryFormat::Preserve));
    return out;
  }
};

// Groups: [0..2] lr x1 with the default decay, [3] lr x0.1 without decay, [4..6] lr x0.5 with decay 0.05.
std::vector<ParamGroup> make_groups(const Setup& s, const std::vector<torch::Tensor>& params) {
  ParamGroup a{{s.names[0], s.names[1], s.names[2]}, {params[0], params[1], params[2]}};
  ParamGroup b{{s.names[3]}, {params[3]}, 0.1, 0.0};
  ParamGroup c{{s.names[4], s.names[5], s.names[6]}, {params[4], params[5], params[6]}, 0.5, 0.05};
  return {a, b, c};
}

double schedule(int step) { return 1e-2 * (1.0 - step / 40.0); }  // the lr changes every step, as a schedule's does

void set_grads(std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads) {
  for (size_t i = 0; i < params.size(); ++i)
    params[i].mutable_grad() = grads[i].defined() ? grads[i].clone(torch::MemoryFormat::Preserve) : torch::Tensor();
}

void run_ours(AdamW& opt, std::vector<torch::Tensor>& params, const Setup& s, int from, int to) {
  for (int step = from; step < to; ++step) {
    set_grads(params, s.grads[step]);
    opt.set_lr(schedule(step));
    opt.step();
    opt.zero_grad();
  }
}

// max |a - b| relative to the tensor's scale max |b| (element-wise ratios blow up where a moment crosses zero).
// The fused kernel differs from torch's AVX2 kernels by an ulp here and there (torch's add uses fused multiply-add).
double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  auto diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max();
  return (diff / b.to(torch::kFloat64).abs().max()).item<double>();
}

// torch::optim keys its per-param state by the TensorImpl address: as a string in LibTorch 1.x, as the pointer in 2.x.
template <typename StateMap>
const torch::optim::OptimizerParamState& state_of(const StateMap& states, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream key;  // what c10::guts::to_string(p.unsafeGetTensorImpl()) gives
    key << p.unsafeGetTensorImpl();
    return *states.at(key.str());
  } else {
    return *states.at(p.unsafeGetTensorImpl());
  }
}

}  // namespace

TEST_CASE("fused AdamW matches torch::optim::AdamW over 20 steps with decay, group lr scale and all layouts",
          "[train][optimizer]") {
  const int steps = 20;
  Setup s(steps);
  std::vector<torch::Tensor> ours = s.clone_params();
  std::vector<torch::Tensor> theirs = s.clone_params();
  AdamW opt(make_groups(s, ours), AdamWOptions{});

  // The same groups for LibTorch's AdamW: per-group options carry lr = base * scale and the weight decay.
  using TorchOpts = torch::optim::AdamWOptions;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{theirs[0], theirs[1], theirs[2]},
                      std::make_unique<TorchOpts>(TorchOpts(1e-3).weight_decay(0.01)));
  groups.emplace_back(std::vector<torch::Tensor>{theirs[3]}, std::make_unique<TorchOpts>(TorchOpts(1e-3).weight_decay(0.0)));
  groups.emplace_back(std::vector<torch::Tensor>{theirs[4], theirs[5], theirs[6]},
                      std::make_unique<TorchOpts>(TorchOpts(1e-3).weight_decay(0.05)));
  torch::optim::AdamW reference(groups, TorchOpts(1e-3));
  const double scales[] = {1.0, 0.1, 0.5};

  for (int step = 0; step < steps; ++step) {
    set_grads(ours, s.grads[step]);
    set_grads(theirs, s.grads[step]);
    opt.set_lr(schedule(step));
    opt.step();
    for (size_t g = 0; g < 3; ++g)
      static_cast<TorchOpts&>(reference.param_groups()[g].options()).lr(schedule(step) * scales[g]);
    reference.step();
  }
  CHECK(opt.step_count() == steps);
  for (size_t i = 0; i < ours.size(); ++i) {
    INFO(s.names[i]);
    CHECK(ours[i].strides() == theirs[i].strides());  // layouts are kept
    CHECK(!torch::equal(ours[i], s.params[i]));       // and every param moved
    CHECK(max_rel_diff(ours[i], theirs[i]) < 1e-6);
    if (i == 2 || i == 5) CHECK(torch::equal(ours[i], theirs[i]));  // the op-by-op fallback is torch's code exactly
  }
  // The optimizer state matches torch's too (exp_avg_sq is the sensitive one).
  const auto state = opt.state();
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(state_of(reference.state(), theirs[i]));
    INFO(s.names[i]);
    CHECK(max_rel_diff(state.at("exp_avg." + s.names[i]), st.exp_avg()) < 1e-6);
    CHECK(max_rel_diff(state.at("exp_avg_sq." + s.names[i]), st.exp_avg_sq()) < 1e-6);
    CHECK(state.at("step." + s.names[i]).item<int64_t>() == st.step());
  }
  CHECK(state.at("step." + s.names[6]).item<int64_t>() == steps / 2);  // no grad = no step, as torch
}

TEST_CASE("AdamW state saved at step 10 and loaded into a fresh optimizer continues bit-identically",
          "[train][optimizer]") {
  const int steps = 20;
  Setup s(steps);
  std::vector<torch::Tensor> straight = s.clone_params();
  AdamW uninterrupted(make_groups(s, straight), AdamWOptions{});
  run_ours(uninterrupted, straight, s, 0, steps);

  std::vector<torch::Tensor> first = s.clone_params();
  AdamW before(make_groups(s, first), AdamWOptions{});
  run_ours(before, first, s, 0, 10);
  // Through real safetensors bytes, as a checkpoint stores it.
  const std::string bytes = em::tensor::safetensors_to_bytes(before.state());
  const em::tensor::TensorMap loaded = em::tensor::load_safetensors_from_bytes(bytes, "optimizer.safetensors");

  std::vector<torch::Tensor> resumed;
  for (size_t i = 0; i < first.size(); ++i) resumed.push_back(first[i].clone(torch::MemoryFormat::Preserve));
  AdamW after(make_groups(s, resumed), AdamWOptions{});
  after.load_state(loaded);
  CHECK(after.step_count() == 10);
  run_ours(after, resumed, s, 10, steps);
  CHECK(after.step_count() == steps);
  for (size_t i = 0; i < resumed.size(); ++i) {
    INFO(s.names[i]);
    CHECK(torch::equal(resumed[i], straight[i]));
    CHECK(resumed[i].strides() == straight[i].strides());
  }
}

TEST_CASE("fused AdamW gives the same bits whatever the thread count", "[train][optimizer]") {
  torch::manual_seed(3);
  const torch::Tensor start = torch::randn({300001});  // several 64K-float tasks and an odd tail
  const torch::Tensor grad = torch::randn({300001});
  auto run = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    torch::Tensor p = start.clone();
    AdamW opt({ParamGroup{{"p"}, {p}}}, AdamWOptions{});
    for (int step = 0; step < 3; ++step) {
      p.mutable_grad() = grad * (step + 1);
      opt.step();
    }
    at::set_num_threads(before);
    return p;
  };
  CHECK(torch::equal(run(1), run(4)));
}

TEST_CASE("a channels-last 1x1 conv weight with a contiguous gradient is updated by the fused loop",
          "[train][optimizer]") {
  // [O, I, 1, 1] in channels-last and contiguous strides is one memory layout (only size-1 dims' strides differ), so
  // it must take the fused path and give the same bits as its contiguous twin. The op-by-op fallback rounds
  // differently (torch's kernels use fused multiply-add).
  torch::manual_seed(5);
  const torch::Tensor start = torch::randn({512, 256, 1, 1});
  // Allocated channels-last (as empty_like / clone(Preserve) of such a weight are): strides [256, 1, 256, 256].
  torch::Tensor cl = torch::empty({512, 256, 1, 1}, torch::TensorOptions().memory_format(torch::MemoryFormat::ChannelsLast));
  cl.copy_(start);
  torch::Tensor plain = start.clone();
  REQUIRE(cl.strides() != plain.strides());
  AdamW opt_cl({ParamGroup{{"w"}, {cl}}}, AdamWOptions{});
  AdamW opt_plain({ParamGroup{{"w"}, {plain}}}, AdamWOptions{});
  for (int step = 0; step < 5; ++step) {
    const torch::Tensor grad = torch::randn({512, 256, 1, 1}) * (1e-3 + step);
    cl.mutable_grad() = grad.clone();  // contiguous, as LibTorch's conv backward may hand it
    plain.mutable_grad() = grad.clone();
    opt_cl.step();
    opt_plain.step();
  }
  CHECK(torch::equal(cl.contiguous(), plain));
}

TEST_CASE("step(clip_coefficient(total_grad_norm)) equals clip_grad_norm_ then step(), bit for bit",
          "[train][optimizer]") {
  for (double max_norm : {0.5, 1e6}) {  // clipping, and a norm below the limit (coefficient 1)
    Setup s(4);
    std::vector<torch::Tensor> ours = s.clone_params(), reference = s.clone_params();
    AdamW opt_ours(make_groups(s, ours), AdamWOptions{});
    AdamW opt_reference(make_groups(s, reference), AdamWOptions{});
    for (int step = 0; step < 4; ++step) {
      set_grads(ours, s.grads[step]);
      set_grads(reference, s.grads[step]);
      const torch::Tensor norm = total_grad_norm(ours);
      const double reference_norm = torch::nn::utils::clip_grad_norm_(reference, max_norm);
      CHECK(norm.item<double>() == reference_norm);
      opt_ours.step(clip_coefficient(norm, max_norm));
      opt_reference.step();
      opt_ours.zero_grad();
      opt_reference.zero_grad();
    }
    for (size_t i = 0; i < ours.size(); ++i) {
      INFO("max_norm " << max_norm << ", param " << s.names[i]);
      CHECK(torch::equal(ours[i], reference[i]));
    }
  }
}

TEST_CASE("AdamW load_state is strict and names the missing, unknown or misshapen tensor", "[train][optimizer]") {
  Setup s(1);
  std::vector<torch::Tensor> params = s.clone_params();
  AdamW opt(make_groups(s, params), AdamWOptions{});
  const em::tensor::TensorMap good = opt.state();
  CHECK(good.size() == 1 + 3 * s.names.size());

  em::tensor::TensorMap missing = good;
  missing.erase("exp_avg_sq.w.conv_cl");
  CHECK_THROWS_WITH(opt.load_state(missing), Catch::Contains("exp_avg_sq.w.conv_cl") && Catch::Contains("missing"));

  em::tensor::TensorMap unknown = good;
  unknown["exp_avg.not.a.param"] = torch::zeros({1});
  CHECK_THROWS_WITH(opt.load_state(unknown), Catch::Contains("exp_avg.not.a.param"));

  em::tensor::TensorMap misshapen = good;
  misshapen["exp_avg.b.bias"] = torch::zeros({8});
  CHECK_THROWS_WITH(opt.load_state(misshapen), Catch::Contains("exp_avg.b.bias") && Catch::Contains("[8]"));

  // A failed load leaves the optimizer as it was.
  CHECK(opt.step_count() == 0);
  CHECK_NOTHROW(opt.load_state(good));
}

TEST_CASE("AdamW rejects bad groups and options with the parameter named", "[train][optimizer]") {
  auto p = torch::zeros({2});
  CHECK_THROWS_WITH(AdamW({ParamGroup{{"a", "b"}, {p}}}, AdamWOptions{}), Catch::Contains("2 names for 1"));
  CHECK_THROWS_WITH(AdamW({ParamGroup{{"a"}, {p}}, ParamGroup{{"a"}, {p.clone()}}}, AdamWOptions{}),
                    Catch::Contains("'a'") && Catch::Contains("twice"));
  AdamWOptions bad;
  bad.beta2 = 1.0;
  CHECK_THROWS_WITH(AdamW({ParamGroup{{"a"}, {p}}}, bad), Catch::Contains("beta2"));
  CHECK_THROWS_AS(AdamW({ParamGroup{{"i"}, {torch::zeros({2}, torch::kInt64)}}}, AdamWOptions{}), em::Error);
}

// Hidden benchmark (run with "[.bench]"): one thread, 25M floats in ResNet-50-like tensors.
TEST_CASE("benchmark fused AdamW against torch::optim::AdamW on 25M floats, 1 thread", "[.bench][optimizer]") {
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  // ResNet-50-like: 25.5M floats in big conv/fc weights plus 100 small norm vectors (its 161 tensors hold 25.56M).
  std::vector<std::vector<int64_t>> shapes{{1000, 2048}, {2048, 1024, 1, 1}, {2048, 512, 1, 1}, {512, 2048, 1, 1},
                                           {512, 2048, 1, 1}, {512, 512, 3, 3}, {512, 512, 3, 3}, {512, 512, 3, 3},
                                           {256, 256, 3, 3}, {256, 256, 3, 3}, {256, 256, 3, 3}, {256, 256, 3, 3},
                                           {256, 256, 3, 3}, {256, 256, 3, 3}, {1024, 256, 1, 1}, {1024, 256, 1, 1},
                                           {2048, 2048, 1, 1}, {1024, 2048, 1, 1}, {512, 1024, 1, 1}, {512, 512}};
  for (int i = 0; i < 100; ++i) shapes.push_back({256});
  std::vector<torch::Tensor> a, b;
  std::vector<std::string> names;
  int64_t total = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto p = torch::randn(shapes[i]);
    total += p.numel();
    a.push_back(p.clone());
    b.push_back(p.clone());
    a.back().mutable_grad() = torch::randn(shapes[i]);
    b.back().mutable_grad() = a.back().grad().clone();
    names.push_back("p" + std::to_string(i));
  }
  AdamW ours({ParamGroup{names, a}}, AdamWOptions{});
  torch::optim::AdamW theirs(b, torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
  auto time = [](const std::function<void()>& f) {  // best of 5: the least disturbed by other work on the machine
    f();  // warm-up: allocates the moments
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double t_ours = time([&] { ours.step(); });
  const double t_theirs = time([&] { theirs.step(); });
  WARN("AdamW step on " << total << " floats in " << shapes.size() << " tensors, 1 thread (best of 5): fused " << t_ours * 1e3 << " ms, torch::optim::AdamW "
                        << t_theirs * 1e3 << " ms, speedup " << t_theirs / t_ours << "x");
  at::set_num_threads(threads);
  CHECK(t_ours < t_theirs);
}
