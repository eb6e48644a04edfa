// The one object through which a training run writes its output folder (docs/run-directory.md): hyperparameters.json,
// metrics.jsonl, TensorBoard events, checkpoints and their rotation, the best and the final model, *_results.json.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "em/io/json.hpp"
#include "em/train/checkpoint.hpp"
#include "em/train/optimizer.hpp"
#include "em/train/task.hpp"

namespace em::train {

class EventWriter;
class MetricsLog;

class RunDirectory {
 public:
  // Claims `root` for a run: takes its lock (OUT/.emkit.lock, an flock held while this object lives: a second
  // em-train on the same folder is refused at once, never interleaves; the kernel releases it when a process dies),
  // removes a killed run's hidden leftovers, then prepare_output_dir (refuses another run's folder unless
  // `overwrite`; resuming takes it as it is). `writer` = false: a process that trains but leaves the folder alone. That flag is the whole rule of
  // who writes: data-parallel training will pass rank == 0 here, and every write method below checks it and nothing
  // else does. Reads (resume_point, has_best_model) work either way.
  RunDirectory(std::filesystem::path root, bool overwrite, bool resuming, bool writer = true);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::filesystem::path& root() const { return root_; }
  bool writer() const { return writer_; }
  std::filesystem::path checkpoint_path(int64_t step) const;

  // The complete checkpoint to resume from: `requested`, or the latest in the folder when it is "".
  std::filesystem::path resume_point(const std::string& requested) const;

  // Starts this session's logs: writes hyperparameters.json, cuts metrics.jsonl back to `resumed_step` (-1: a fresh
  // run, emptied) and opens a new TensorBoard events file that starts a session at `first_step`.
  void open_logs(const io::Json& hyperparameters, int64_t resumed_step, int64_t first_step);
  // One line of metrics.jsonl, flushed at once.
  void log_metrics(const io::Json& record);
  // One TensorBoard scalar; flush_scalars() after each logged step so a kill loses at most that step.
  void log_scalar(const std::string& tag, double value, int64_t step);
  void flush_scalars();

  // checkpoint-{state.global_step}, written atomically (save_checkpoint), then the oldest beyond `save_total_limit`
  // removed, never state.best_checkpoint_step (rotate_checkpoints).
  void save_checkpoint(Task& task, const AdamW& optimizer, const TrainerState& state, const io::Json& hyperparameters,
                       const std::filesystem::path& model_files, int64_t save_total_limit);
  // The end of a run with save_total_limit 1 and a best checkpoint: only that one stays (as HF Trainer's train()).
  void keep_only_checkpoint(int64_t step);

  // The best model so far (load_best_model_at_end), replacing the previous best.
  void save_best_model(Task& task);
  bool has_best_model() const;
  // model/ becomes a copy of the best model.
  void use_best_model_as_final();
  // Writes the final model to a hidden folder (its files can then be shared with the last checkpoint) and returns it;
  // publish_final_model renames it to model/. Returns "" when not the writer.
  std::filesystem::path stage_final_model(Task& task);
  void publish_final_model(const std::filesystem::path& staged);

  // train_results.json, eval_results.json (when there was an evaluation) and all_results.json (both, flat).
  void write_results(const io::Json& train_results, const io::Json& eval_results);

 private:
  // The task's model in a fresh hidden folder `name` of the run directory.
  std::filesystem::path stage_model(Task& task, const std::string& name);

  std::filesystem::path root_;
  bool writer_;
  int lock_fd_ = -1;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<EventWriter> events_;
};

}  // namespace em::train
