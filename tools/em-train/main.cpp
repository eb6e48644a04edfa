// em-train: train one algorithm on a dataset folder and write a run directory (docs/run-directory.md).
#include "common/torch_cli.hpp"
#include "common/train_flags.hpp"
#include "common/dist_cli.hpp"
#include "common/predict_flags.hpp"
#include "em/tensor/autocast.hpp"
#include "em/tensor/device.hpp"
#include "em/core/log.hpp"
#include "em/core/signals.hpp"
#include "em/draw/pictures.hpp"
#include "em/io/json.hpp"
#include "em/io/file.hpp"

int main(int argc, char** argv) {
  em::cli::TrainFlags flags;
  CLI::App* parsed = nullptr;
  int nproc_per_node = 1;
  std::string device_spec = "auto";
  bool compact = false;  // the summary is one line already
  em::cli::ToolInfo info{
      "em-train",
      "Train an algorithm (classification: ResNet, segmentation: SegFormer, detection: DETR) on a dataset folder. "
      "Writes OUT/model (HF-compatible), checkpoints every save_steps, TensorBoard events, metrics.jsonl, "
      "*_results.json and the curves in OUT/plots. Ctrl-C saves a checkpoint and exits 130; --resume_from_checkpoint continues exactly.",
      "em-train --algo ALGO --data DIR --output_dir OUT [--hyperparameters hp.json] [--NAME VALUE ...]",
      "em-train --algo classification --data fashion --output_dir run --learning_rate 1e-3 "
      "--num_train_epochs 2 && em-eval --model run/model --data fashion | jq .accuracy",
      "em-validate(1), em-eval(1), em-predict(1), docs/em-train.md, docs/training.md"};
  info.keep_freed_memory = true;  // many forward passes: see core/allocator.hpp
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        em::cli::bind_train_flags(app, flags);
        em::cli::bind_nproc_flag(app, nproc_per_node);
        em::cli::bind_device_flag(app, device_spec);
        em::cli::bind_compact_flag(app, compact, "Accepted for uniformity: the final summary is one JSON line already");
        parsed = &app;
      },
      [&] {
        em::train::TrainOptions opts = em::cli::resolve_train_options(*parsed, flags);
        // --fp16 needs CUDA: refused (exit 2) before any worker starts or anything is written (without touching a
        // GPU here: the workers pick theirs).
        if (opts.hp.fp16 && (device_spec == "cpu" || !torch::cuda::is_available()))
          em::tensor::check_precision(em::tensor::Precision::fp16, torch::kCPU);
        if (auto launched = em::cli::launch_local_workers(nproc_per_node, argc, argv)) return *launched;
        // Under a launcher LOCAL_RANK picks the GPU; the backend follows the device (NCCL for CUDA, Gloo for the CPU).
        const torch::Device device = em::tensor::resolve_device(device_spec, em::tensor::local_rank_from_env());
        auto group = em::cli::join_run(device, opts.hp.ddp_timeout);
        em::signals::install_stop_handlers();
        auto task = em::train::make_training_task(opts);
        task->model().to(device);  // before the optimizer is built on its parameters
        em::train::TrainResult result = em::train::train(*task, opts, group.get());
        if (group->rank() != 0) return em::ExitCode::ok;  // rank 0 reports for the run
        em::io::Json summary = result.train_results;
        if (!result.eval_results.is_null()) summary["eval"] = result.eval_results;
        em::io::write_stdout(em::cli::json_output(summary, true));
        // The curves are a view of metrics.jsonl: a failure to draw them costs the run nothing (em-plot redraws).
        try {
          em::draw::write_run_plots(opts.output_dir);
        } catch (const std::exception& e) {
          em::log::warn("could not draw {}/plots: {} (em-plot {} draws them again)", opts.output_dir, e.what(),
                        opts.output_dir);
        }
        em::log::info("done: model in {}/model, curves in {}/plots", opts.output_dir, opts.output_dir);
        return em::ExitCode::ok;
      });
}
