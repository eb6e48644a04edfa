// The training loop shared by the three algorithms: AdamW + schedule, logging (metrics.jsonl, TensorBoard, progress),
// evaluation, atomic checkpoints, exact resume and stop-on-signal. Writes the run directory of SPEC §5.
#pragma once
#include <optional>
#include <string>

#include "em/io/json.hpp"
#include "em/train/hyperparameters.hpp"
#include "em/train/task.hpp"

namespace em::train {

struct TrainOptions {
  std::string data_dir;
  std::string output_dir;
  Hyperparameters hp;
  std::string model_config;                          // built-in name or config.json path; "" = the algorithm's default
  std::string init;                                  // weights to start from ("" = random initialisation)
  bool overwrite_output_dir = false;
  std::optional<std::string> resume_from_checkpoint; // set: resume; "" = the latest checkpoint in output_dir
};

struct TrainResult {
  int64_t global_step = 0;
  double epoch = 0;
  io::Json train_results;  // train_loss, train_runtime, train_samples_per_second, ...
  io::Json eval_results;   // the last evaluation's metrics (empty if none)
};

// Builds the task for opts.hp.algo (dataset, model from config/init) — defined in tasks.cpp.
std::unique_ptr<Task> make_training_task(const TrainOptions& opts);

// Runs training to the end (or to a stop signal: checkpoint saved, then throws em::Interrupted).
TrainResult train(Task& task, const TrainOptions& opts);

}  // namespace em::train
