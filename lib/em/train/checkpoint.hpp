// The run directory's layout and checkpoint format (docs/run-directory.md): claiming an output folder, atomic checkpoints
// (temp folder + rename) with model, optimizer, RNG and trainer state, the latest complete one, rotation
// (save_total_limit). The trainer writes through RunDirectory (run_directory.hpp), the one caller of the writers here.
#pragma once
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "em/io/json.hpp"
#include "em/train/optimizer.hpp"
#include "em/train/task.hpp"

namespace em::train {

// Everything the loop needs to continue exactly where a checkpoint was taken.
struct TrainerState {
  int64_t global_step = 0;
  int64_t total_steps = 0;
  int64_t steps_per_epoch = 0;
  double epoch = 0;
  double window_loss = 0;        // losses summed since the last logged step
  int64_t window_steps = 0;
  double total_loss = 0;         // every step's loss summed (train_loss = total_loss / global_step)
  double runtime_s = 0;          // training time before this process (resumed runs add theirs)
  bool has_best = false;
  double best_metric = -std::numeric_limits<double>::infinity();
  int64_t best_step = 0;
  // HF's best_model_checkpoint: the checkpoint of the best evaluation, set when a checkpoint is written and one exists
  // at best_step (-1: none yet). Rotation never removes it.
  int64_t best_checkpoint_step = -1;
  int64_t evals_without_improvement = 0;
  // The processes that trained and the global batch (per process x processes): a checkpoint resumes with another
  // world size at the same sample position (0: a checkpoint from before data-parallel training, one process).
  int64_t world_size = 1;
  int64_t global_batch_size = 0;
  // Batches per optimizer step (gradient_accumulation_steps): a step trains on global_batch_size x this many images.
  int64_t gradient_accumulation_steps = 1;
  // fp16 training's loss scaler (GradScaler::state(): torch's GradScaler.state_dict() keys); {} without one.
  io::Json grad_scaler = io::Json::object();
  io::Json log_history = io::Json::array();  // HF trainer_state.json field: every logged object

  io::Json to_json() const;
  static TrainerState from_json(const io::Json& j, const std::string& what);
};

namespace run_dir {
constexpr const char* kModel = "model";
constexpr const char* kBestModel = ".best-model";  // kept up to date with load_best_model_at_end
constexpr const char* kRuns = "runs";
constexpr const char* kPlots = "plots";  // em-train's curves at the end of a run (draw::write_run_plots)
constexpr const char* kMetrics = "metrics.jsonl";
constexpr const char* kHyperparameters = "hyperparameters.json";
constexpr const char* kTrainerState = "trainer_state.json";
constexpr const char* kTrainResults = "train_results.json";
constexpr const char* kEvalResults = "eval_results.json";
constexpr const char* kAllResults = "all_results.json";
}  // namespace run_dir

// Refuses an output folder that holds another run unless `overwrite` (then removes only what emkit writes there).
// Files emkit did not write are never touched. Resuming claims the folder as it is.
void prepare_output_dir(const std::filesystem::path& out, bool overwrite, bool resuming);
// Removes the hidden .tmp-* entries a killed run left at the top of `out` (half-written checkpoints, checkpoints
// being rotated away, staged models). Only while holding the run directory's lock: no live run owns them then.
void remove_leftovers(const std::filesystem::path& out);

// Complete checkpoints (with trainer_state.json) as (step, path), ascending.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& out);
// The latest complete checkpoint, or an error saying none exists.
std::filesystem::path latest_checkpoint(const std::filesystem::path& out);

// Writes OUT/checkpoint-{step} atomically: the model (task.save_model), optimizer, RNG, hyperparameters and, last,
// trainer_state.json. `model_files`: a folder that task.save_model() wrote for this very state (the final model/);
// its files are hard-linked into the checkpoint instead of writing the model a second time.
void save_checkpoint(const std::filesystem::path& out, Task& task, const AdamW& optimizer, const TrainerState& state,
                     const io::Json& hyperparameters, const std::filesystem::path& model_files = {});
// Restores model, optimizer, RNG and trainer state from a checkpoint folder.
TrainerState load_checkpoint(const std::filesystem::path& dir, Task& task, AdamW& optimizer);

// HF Trainer's _rotate_checkpoints: deletes the oldest checkpoints beyond `limit` (0 = keep all), never the best one
// (`best_step`, -1 = none): the best is kept in addition to the newest limit - 1, and with limit 1 the newest is kept
// beside it (so the run can still resume).
void rotate_checkpoints(const std::filesystem::path& out, int64_t limit, int64_t best_step);
// HF's end of training with save_total_limit 1: every checkpoint but the best one (`best_step`) is deleted.
void keep_only_checkpoint(const std::filesystem::path& out, int64_t best_step);
// The checkpoint of `state`'s best evaluation as HF's _save_checkpoint records it when checkpoint `saving_step` is
// written: best_step when a checkpoint exists there (or is this one), else the one recorded before.
int64_t best_checkpoint_after_save(const std::filesystem::path& out, const TrainerState& state, int64_t saving_step);

}  // namespace em::train
