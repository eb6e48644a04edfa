// em-eval: evaluate a trained model on a dataset split and print the metrics (docs/metrics.md) as JSON on stdout.
#include "common/dist_cli.hpp"
#include "common/predict_flags.hpp"
#include "common/torch_cli.hpp"
#include "em/core/log.hpp"
#include "em/draw/pictures.hpp"
#include "em/io/file.hpp"
#include "em/tensor/device.hpp"
#include "em/tensor/precision_choice.hpp"
#include "em/train/tasks.hpp"

int main(int argc, char** argv) {
  em::train::EvalTaskOptions task_options;
  em::train::EvalOptions eval;
  eval.plot_examples = 4;  // used with --plots only
  bool compact = false;
  int nproc_per_node = 1;
  int64_t ddp_timeout = 1800;
  std::string device_spec = "auto", plots_dir, precision;
  em::cli::ToolInfo info{
      "em-eval",
      "Evaluate a trained model on a split of a dataset folder; prints the metrics JSON on stdout "
      "(classification: accuracy, macro precision/recall/f1, per-class values, confusion matrix; segmentation: "
      "mean_iou, mean_accuracy, overall_accuracy, per-category IoU and accuracy; detection: the 12 COCO box metrics "
      "of pycocotools and per-class AP).",
      "em-eval --model RUN/model --data DIR [--split validation|test|train] [--predictions FILE] "
      "[--plots DIR] [--precision auto|fp32|bf16] [--device auto|cpu|cuda[:N]]",
      "em-eval --model run/model --data fashion --split test --predictions preds.jsonl | jq .accuracy",
      "em-train(1), em-metrics(1), docs/em-eval.md, docs/metrics.md"};
  info.keep_freed_memory = true;  // many forward passes: see core/allocator.hpp
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        em::cli::bind_model_flag(app, task_options.model_dir);
        app.add_option("--data", task_options.data_dir, "Dataset folder in the algorithm's layout")->required();
        app.add_option("--split", eval.split, "Split to evaluate")
            ->check(CLI::IsMember({"train", "validation", "test"}));
        app.add_option("--predictions", eval.predictions_path,
                       "Also write the predictions (classification: JSONL, one object per image; segmentation: a "
                       "folder of label PNGs at the seg_map paths; detection: the COCO results list [{image_id, "
                       "category_id, bbox, score}]; '-' = stdout is not allowed, stdout carries the metrics)");
        app.add_option("--plots", plots_dir,
                       "Also draw the metrics as PNGs in this folder: classification the confusion matrix (counts "
                       "and row-normalised) and per-class bars; segmentation per-class IoU bars and "
                       "image | truth | prediction examples; detection precision-recall curves and per-class AP bars "
                       "(docs/em-eval.md)");
        app.add_option("--plot_examples", eval.plot_examples,
                       "Segmentation with --plots: how many images of the split to draw as examples [default 4]")
            ->check(CLI::Range(0, 1000));
        em::cli::bind_batch_size_flag(app, task_options.batch_size, "--per_device_eval_batch_size");
        app.get_option("--batch_size")
            ->default_str("the algorithm's per_device_eval_batch_size: 16 classification, 4 segmentation/detection");
        app.add_option("--num_workers", task_options.num_workers, "Data loader threads")
            ->check(CLI::Range(0, 64));
        em::cli::bind_precision_flags(app, eval.bf16, precision);
        em::cli::bind_compact_flag(app, compact);
        em::cli::bind_device_flag(app, device_spec);
        em::cli::bind_nproc_flag(app, nproc_per_node);
        app.add_option("--ddp_timeout", ddp_timeout,
                       "Data-parallel runs: seconds to wait for the other processes before failing [default 1800]")
            ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
      },
      [&] {
        if (plots_dir.empty()) eval.plot_examples = 0;
        const em::tensor::PrecisionMode precision_mode = em::tensor::precision_mode_of_flags(precision, eval.bf16);
        if (eval.predictions_path == "-")
          em::usage_fail("--predictions: give a file; stdout carries the metrics JSON");
        if (auto launched = em::cli::launch_local_workers(nproc_per_node, argc, argv)) return *launched;
        const torch::Device device = em::tensor::resolve_device(device_spec, em::tensor::local_rank_from_env());
        auto group = em::cli::join_run(device, ddp_timeout);
        if (!group->single() && !eval.predictions_path.empty())
          em::usage_fail("--predictions: write them from one process (each of the {} processes scores only its share)",
                         group->size());
        task_options.batch_size = em::train::eval_batch_size(task_options);
        em::log::info("{}: {} split, batches of {} images", task_options.model_dir, eval.split, task_options.batch_size);
        auto task = em::train::make_eval_task(task_options);
        const em::tensor::PrecisionChoice chosen =
            em::tensor::choose_inference_precision(precision_mode, task->algo(), device, em::host_cpu_features());
        eval.bf16 = chosen.precision == em::tensor::Precision::bf16;
        em::log::info("precision: {}", chosen.describe());
        // The model families read their device from the module (models::ModelParts::device), so moving the module
        // is all evaluation needs: batches follow through to_model_input / detect, results come back to the CPU.
        task->model().to(device);
        eval.group = group.get();  // each rank scores its share of the split; the counts are summed over ranks
        em::train::EvalResult result = task->evaluate(eval);
        if (group->rank() != 0) return em::ExitCode::ok;  // rank 0 prints the metrics of the whole split
        if (!plots_dir.empty()) {
          const auto written = em::draw::write_eval_plots(
              plots_dir, {task->algo(), result.metrics, task->labels(), result.coco.get(), std::move(result.examples)});
          em::log::info("drew {} pictures in {}", written.size(), plots_dir);
        }
        em::io::write_stdout(em::cli::json_output(result.metrics, compact));
        return em::ExitCode::ok;
      });
}
