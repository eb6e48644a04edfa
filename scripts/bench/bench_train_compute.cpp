// em-train's compute-only throughput: the same task, model, loss, clipping and fused AdamW steps as em-train, on
// batches built once and kept in memory — the ceiling em-train's data pipeline is measured against.
#include "common/torch_cli.hpp"
#include "common/train_flags.hpp"
#include "em/tensor/autocast.hpp"
#include "em/io/file.hpp"
#include "em/train/trainer.hpp"

#include <chrono>

int main(int argc, char** argv) {
  em::cli::TrainFlags flags;
  CLI::App* parsed = nullptr;
  int64_t steps = 100, warmup = 5;
  em::cli::ToolInfo info{"em-bench-train-compute",
                         "Training steps on in-memory batches (no decoding, no loader): images/s of compute alone.",
                         "em-bench-train-compute --algo ALGO --data DIR --output_dir X [--steps N] [hp flags]",
                         "", "scripts/bench/bench_train_classification.sh, bench_segmentation.sh, bench_detection.sh"};
  info.keep_freed_memory = true;  // many forward passes: see core/allocator.hpp
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        em::cli::bind_train_flags(app, flags);
        app.add_option("--steps", steps, "Timed steps")->check(CLI::PositiveNumber);
        app.add_option("--warmup", warmup, "Untimed steps first")->check(CLI::NonNegativeNumber);
        parsed = &app;
      },
      [&] {
        em::train::TrainOptions opts = em::cli::resolve_train_options(*parsed, flags);
        auto task_holder = em::train::make_training_task(opts);
        em::train::Task& task = *task_holder;
        const int64_t bs = opts.hp.per_device_train_batch_size;
        std::vector<em::tensor::Batch> batches;
        for (int64_t b = 0; b < 8; ++b) {
          std::vector<int64_t> idx;
          for (int64_t i = 0; i < bs; ++i) idx.push_back((b * bs + i) % task.train_size());
          batches.push_back(task.train_batch(idx, 0));
        }
        em::train::AdamWOptions adam;
        adam.lr = opts.hp.learning_rate;
        em::train::AdamW optimizer(task.param_groups(opts.hp.weight_decay), adam);
        task.model().train();
        // Seconds spent per phase over the timed steps (the phases run synchronously on the CPU).
        double t_forward = 0, t_backward = 0, t_clip = 0, t_optimizer = 0;
        using clock = std::chrono::steady_clock;
        auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
        auto run = [&](int64_t n, bool timed) {
          for (int64_t s = 0; s < n; ++s) {
            const auto& batch = batches[static_cast<size_t>(s) % batches.size()];
            em::train::LossOutput out;
            auto t = clock::now();
            {
              em::tensor::Bf16Autocast autocast(opts.hp.bf16);
              out = task.loss(batch);
            }
            if (timed) t_forward += since(t);
            t = clock::now();
            out.loss.backward();
            if (timed) t_backward += since(t);
            t = clock::now();
            double grad_scale = 1.0;  // as em-train: the norm here, the scaling inside the optimizer's pass
            if (opts.hp.max_grad_norm > 0)
              grad_scale = em::train::clip_coefficient(em::train::total_grad_norm(task.model().parameters()),
                                                       opts.hp.max_grad_norm);
            if (timed) t_clip += since(t);
            t = clock::now();
            optimizer.step(grad_scale);
            optimizer.zero_grad();
            (void)out.loss.item<double>();  // em-train reads the loss every step too
            if (timed) t_optimizer += since(t);
          }
        };
        run(warmup, false);
        auto t0 = std::chrono::steady_clock::now();
        run(steps, true);
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto ms = [&](double total) { return 1000 * total / static_cast<double>(steps); };
        em::io::Json j{{"steps", steps},
                       {"batch_size", bs},
                       {"seconds", dt},
                       {"images_per_second", steps * bs / dt},
                       {"ms_per_step", {{"forward", ms(t_forward)},
                                        {"backward", ms(t_backward)},
                                        {"grad_norm", ms(t_clip)},
                                        {"optimizer", ms(t_optimizer)}}}};
        em::io::write_stdout(em::io::dump_json(j) + "\n");
        return em::ExitCode::ok;
      });
}
