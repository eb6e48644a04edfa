// Model-level compute speed on in-memory random batches: inference (eval, no grad) or a training step (forward +
// backward, no optimizer) of a built-in SegFormer / ResNet / DETR with random weights, fp32 or bf16 autocast, in ms
// per batch as JSON. With --profile, LibTorch's (legacy) profiler adds where the time goes: self time per op kind and
// per model part (the innermost profiler scope the models open, e.g. "segformer.attention").
#include "common/torch_cli.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/models/detr.hpp"
#include "em/models/resnet.hpp"
#include "em/models/segformer.hpp"
#include "em/tensor/autocast.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include <torch/csrc/autograd/profiler_legacy.h>

namespace {

using em::io::Json;

Json summary(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {{"median", ms[ms.size() / 2]}, {"min", ms.front()}, {"max", ms.back()}};
}

// Self time (exclusive of nested ops) per op name and per innermost "scope" (a record function whose name has a
// '.', which the models open around their parts; "other" outside any), summed over every thread, in ms.
struct Breakdown {
  std::map<std::string, double> ops, scopes;
};

Breakdown breakdown(const torch::autograd::profiler::thread_event_lists& lists) {
  using torch::autograd::profiler::EventKind;
  Breakdown out;
  for (const auto& events : lists) {
    struct Open {
      std::string name;
      double start_us, child_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.push_back({e.name(), e.cpuUs(), 0.0});
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        Open open = stack.back();
        stack.pop_back();
        const double total = e.cpuUs() - open.start_us;
        if (!stack.empty()) stack.back().child_us += total;
        const bool is_scope = open.name.find('.') != std::string::npos && open.name.find("::") == std::string::npos;
        if (is_scope) continue;  // a scope's own time is the glue between its ops, attributed below via its ops
        const double self_ms = (total - open.child_us) / 1000.0;
        out.ops[open.name] += self_ms;
        std::string scope = "other";
        for (auto it = stack.rbegin(); it != stack.rend(); ++it)
          if (it->name.find('.') != std::string::npos && it->name.find("::") == std::string::npos) {
            scope = it->name;
            break;
          }
        out.scopes[scope] += self_ms;
      }
    }
  }
  return out;
}

Json top(const std::map<std::string, double>& m, double per, size_t count) {
  std::vector<std::pair<std::string, double>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  Json j = Json::array();
  for (size_t i = 0; i < v.size() && i < count; ++i) j.push_back({{"name", v[i].first}, {"ms", v[i].second / per}});
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "mit-b0", mode = "infer";
  int64_t batch = 2, size = 256, runs = 10, warmup = 2, num_labels = 150;
  bool bf16 = false, channels_last = false, profile = false;
  em::cli::ToolInfo info{"em-bench-models",
                         "Inference or training-step time of a built-in model on an in-memory random batch, in ms, as "
                         "JSON (with --profile: self time per op and per model part).",
                         "em-bench-models --model mit-b0|resnet-50|detr-resnet-50 [--mode infer|train] [--batch 2] "
                         "[--size 256] [--bf16] [--profile]",
                         "em-bench-models --model mit-b0 --mode train --threads 2 --profile | jq .scopes",
                         "scripts/bench/bench_models.sh"};
  info.keep_freed_memory = true;  // many forward passes: see core/allocator.hpp
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("--model", model_name, "A built-in mit-b*, resnet-* or detr-* architecture");
        app.add_option("--mode", mode, "infer (eval, no grad) or train (forward + backward)")
            ->check(CLI::IsMember({"infer", "train"}));
        app.add_option("--batch", batch, "Images per batch")->check(CLI::PositiveNumber);
        app.add_option("--size", size, "Square input size")->check(CLI::PositiveNumber);
        app.add_option("--num_labels", num_labels, "Labels of the head")->check(CLI::PositiveNumber);
        app.add_option("--runs", runs, "Timed runs")->check(CLI::PositiveNumber);
        app.add_option("--warmup", warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
        app.add_flag("--bf16", bf16, "bf16 autocast");
        app.add_flag("--channels_last", channels_last, "Channels-last input batch");
        app.add_flag("--profile", profile, "Add the profiler's breakdown (profiles the timed runs)");
      },
      [&] {
        torch::manual_seed(0);
        std::vector<std::string> labels;
        for (int64_t i = 0; i < num_labels; ++i) labels.push_back("l" + std::to_string(i));
        std::shared_ptr<torch::nn::Module> module;
        std::function<torch::Tensor(const torch::Tensor&)> forward;
        if (model_name.rfind("mit-", 0) == 0) {
          auto config = em::models::SegformerConfig::builtin(model_name);
          config.id2label = labels;
          em::models::SegformerForSemanticSegmentation m(config);
          module = m.ptr();
          forward = [m](const torch::Tensor& x) mutable { return m->forward(x); };
        } else if (model_name.rfind("resnet-", 0) == 0) {
          auto config = em::models::ResNetConfig::builtin(model_name);
          config.id2label = labels;
          em::models::ResNetForImageClassification m(config);
          module = m.ptr();
          forward = [m](const torch::Tensor& x) mutable { return m->forward(x); };
        } else {
          auto config = em::models::DetrConfig::builtin(model_name);
          config.id2label = labels;
          em::models::DetrForObjectDetection m(config);
          module = m.ptr();
          forward = [m](const torch::Tensor& x) mutable {
            auto out = m->forward(x, {});
            return out.logits.sum() + out.pred_boxes.sum();
          };
        }
        torch::Tensor x = torch::randn({batch, 3, size, size});
        if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        const bool train = mode == "train";
        module->train(train);
        auto step = [&] {
          if (train) {
            torch::Tensor out;
            {
              em::tensor::Bf16Autocast autocast(bf16);
              out = forward(x);
            }
            out.to(torch::kFloat).square().mean().backward();
            for (auto& p : module->parameters()) p.mutable_grad() = torch::Tensor();
          } else {
            torch::NoGradGuard no_grad;
            em::tensor::Bf16Autocast autocast(bf16);
            forward(x);
          }
        };
        for (int64_t i = 0; i < warmup; ++i) step();
        // Wall time per run, and the process's CPU time per run: on a shared machine the CPU time of a 1-thread run
        // is the steadier measure of the work done (with more threads it also counts OpenMP's spin-waits).
        std::vector<double> ms, cpu_ms;
        torch::autograd::profiler::thread_event_lists events;
        if (profile)
          torch::autograd::profiler::enableProfilerLegacy(
              torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, false, false));
        for (int64_t i = 0; i < runs; ++i) {
          auto t0 = std::chrono::steady_clock::now();
          const std::clock_t c0 = std::clock();
          step();
          cpu_ms.push_back(1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        if (profile) events = torch::autograd::profiler::disableProfilerLegacy();
        Json j{{"model", model_name},     {"mode", mode},   {"batch", batch},
               {"size", size},            {"bf16", bf16},   {"channels_last", channels_last},
               {"threads", at::get_num_threads()}, {"runs", runs}, {"ms", summary(ms)},
               {"cpu_ms", summary(cpu_ms)}};
        if (profile) {
          Breakdown b = breakdown(events);
          double total = 0;
          for (auto& [k, v] : b.ops) total += v;
          j["profiled_ms_per_run"] = total / static_cast<double>(runs);
          j["ops"] = top(b.ops, static_cast<double>(runs), 25);
          j["scopes"] = top(b.scopes, static_cast<double>(runs), 40);
        }
        em::io::write_stdout(em::io::dump_json(j) + "\n");
        return em::ExitCode::ok;
      });
}
