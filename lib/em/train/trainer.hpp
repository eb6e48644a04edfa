// The training loop shared by the three algorithms: AdamW + schedule, logging (metrics.jsonl, TensorBoard, progress),
// evaluation, atomic checkpoints, exact resume and stop-on-signal. Writes the run directory (docs/run-directory.md)
// through one RunDirectory.
#pragma once
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "em/core/progress.hpp"
#include "em/dist/group.hpp"
#include "em/dist/reducer.hpp"
#include "em/io/json.hpp"
#include "em/train/checkpoint.hpp"
#include "em/train/grad_scaler.hpp"
#include "em/train/hyperparameters.hpp"
#include "em/train/run_directory.hpp"
#include "em/train/schedule.hpp"
#include "em/train/task.hpp"

namespace em::train {

struct TrainOptions {
  std::string data_dir;
  std::string output_dir;
  Hyperparameters hp;
  std::string model_config;                          // built-in name or config.json path; "" = the algorithm's default
  std::string init;                                  // weights to start from ("" = random initialisation)
  bool init_partial = false;                         // --init may leave tensors beyond the task head fresh
  bool overwrite_output_dir = false;
  std::optional<std::string> resume_from_checkpoint; // set: resume; "" = the latest checkpoint in output_dir
  // Loss scaling (hp.fp16 turns it on with these values). Enabled without fp16, it runs the scaler's bookkeeping in
  // fp32: with a power-of-two scale the steps are bit-identical to unscaled ones (the CPU tests check the fp16 path so).
  GradScalerOptions grad_scaler = disabled_scaler();

  static GradScalerOptions disabled_scaler() {
    GradScalerOptions o;
    o.enabled = false;
    return o;
  }
};

struct TrainResult {
  int64_t global_step = 0;
  double epoch = 0;
  io::Json train_results;  // train_loss, train_runtime, train_samples_per_second, ...
  io::Json eval_results;   // the last evaluation's metrics (empty if none)
};

// Builds the task for opts.hp.algo (dataset, model from config/init) — defined in tasks.cpp.
std::unique_ptr<Task> make_training_task(const TrainOptions& opts);

// One training run of `task`. Everything that continues across a checkpoint is in TrainerState; the rest is this
// session's bookkeeping (speed, skipped images, the last evaluation).
class Trainer {
 public:
  // Claims the output folder, builds AdamW, restores the checkpoint when resuming, writes hyperparameters.json and
  // opens the logs. `group`: the processes of a data-parallel run (nullptr: this one alone); rank 0 alone writes the
  // run directory, and `writer` = false keeps even it from writing (see RunDirectory).
  Trainer(Task& task, const TrainOptions& opts, dist::Group* group = nullptr, bool writer = true);
  ~Trainer();
  // Trains to the end (or to a stop signal: checkpoint saved, then throws em::Interrupted), writes the final model
  // and *_results.json.
  TrainResult run();

 private:
  struct Stopwatch {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
  };

  void resume(const std::filesystem::path& checkpoint);
  void convert_position(TrainerState& saved) const;
  void run_epoch();
  std::vector<int64_t> local_indices(const std::vector<int64_t>& order, int64_t batch_in_epoch) const;
  double share_weight(int64_t batch_in_epoch, int64_t* share = nullptr) const;
  void sync_start();
  void sync_buffers();
  // One batch's forward and backward, its gradients added to the step's; `batches_in_step`: how many batches this
  // optimizer step takes (gradient_accumulation_steps, or what is left at the end of an epoch).
  void accumulate(const tensor::Batch& batch, int64_t batch_in_epoch, int64_t batches_in_step, bool last_of_step);
  void keep_accumulated_gradients(bool last_of_step);
  void optimizer_step();
  double agree_on_step(LossOutput& out, int64_t share, int64_t skipped, int64_t images);
  double clip_and_step();  // returns the gradient norm (0 without clipping)
  void log_step(double lr, double grad_norm, const std::map<std::string, double>& terms);
  void after_step();
  void evaluate();
  double best_metric_value(const EvalResult& result) const;
  void update_best(double value);
  void save_checkpoint(const std::filesystem::path& model_files = {});
  void stop_if_requested();
  void save_final_model();
  TrainResult finish();
  void warn_if_unhealthy() const;
  void log(io::Json record);
  void log_communication() const;

  std::unique_ptr<dist::Group> own_group_;  // the group of one when none is given
  dist::Group& group_;
  Task& task_;
  const TrainOptions opts_;
  const Hyperparameters& hp_;  // opts_.hp
  // The metrics the task's evaluations log (Task::metric_names; empty: unknown until the first evaluation) and the one
  // that decides "best" (metric_for_best_model without eval_, checked against them before run_ claims the folder).
  const std::vector<std::string> metric_names_;
  const std::string best_key_;
  const bool best_greater_;
  GradScaler scaler_;          // fp16: loss scaling (disabled otherwise); built before run_ claims the output folder
  RunDirectory run_;
  const int64_t train_size_;
  const int64_t batch_size_;   // per process
  const int64_t global_batch_; // per process x processes: one batch
  const int64_t accumulation_;      // batches per optimizer step (gradient_accumulation_steps)
  const int64_t batches_per_epoch_; // global batches in an epoch
  TrainerState state_;
  const int64_t warmup_steps_;
  const ScheduleType schedule_;
  const int64_t eval_every_;  // eval_strategy=steps: evaluate every this many steps; else 0
  AdamW optimizer_;
  const io::Json hp_json_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // data-parallel runs only
  const std::vector<torch::Tensor> trained_;        // the parameters the optimizer steps
  bool stop_now_ = false;  // a stop was requested on some rank (agreed at the last step)
  int64_t agreed_skipped_ = 0, agreed_images_ = 0;  // this batch's, over every rank
  // The optimizer step being accumulated: its loss and loss terms (means over its batches), its images, and (data-
  // parallel) the gradients of its earlier batches.
  double step_loss_ = 0;
  std::map<std::string, double> step_terms_;
  int64_t step_images_ = 0;
  std::vector<torch::Tensor> kept_gradients_;

  std::optional<Progress> progress_;
  Stopwatch clock_;       // training time since the last checkpoint (state_.runtime_s holds what came before)
  Stopwatch since_step_;  // for the progress line's speed: time in steps only (evaluations and checkpoints excluded)
  double step_seconds_ = 0;
  int64_t images_stepped_ = 0;
  int64_t skipped_total_ = 0;
  int64_t last_saved_step_ = -1;
  io::Json last_eval_;
  bool stop_early_ = false;
  // For the end-of-run health check: the first and last logged window losses of this process, and whether every
  // evaluation stayed at the task's chance level.
  double first_logged_loss_ = -1, last_logged_loss_ = -1;
  int64_t evaluations_ = 0, evaluations_at_chance_ = 0;
  double last_main_metric_ = 0;
};

// Trainer(task, opts, group).run().
TrainResult train(Task& task, const TrainOptions& opts, dist::Group* group = nullptr);

}  // namespace em::train
