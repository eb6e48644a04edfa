// Training hyperparameters: the platform's names, types, defaults and ranges per algorithm (docs/training.md) plus
// the HF Trainer names we add. One table drives flags, --hyperparameters files and validation, so the three can never
// disagree; each row holds the set of algorithms it applies to, and each algorithm's row in core/algo.cpp the
// defaults that differ from this struct's.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"

namespace em::train {

struct Hyperparameters {
  Algo algo = Algo::classification;
  // The platform's parameters.
  int64_t input_size = 28;  // classification only
  double learning_rate = 0.1;
  int64_t per_device_train_batch_size = 16;
  int64_t per_device_eval_batch_size = 16;
  double num_train_epochs = 3;  // an integer for classification
  double threshold = 0.5;       // detection only
  int64_t save_steps = 500;
  // Beyond the platform's (HF Trainer names and semantics; docs/training.md, "Trainer options").
  int64_t seed = 42;
  double weight_decay = 0.0;
  double warmup_ratio = 0.0;
  std::string lr_scheduler_type = "linear";
  int64_t logging_steps = 10;
  std::string eval_strategy = "epoch";  // no | epoch | steps
  int64_t eval_steps = 0;               // with eval_strategy=steps; 0 = save_steps
  std::string save_strategy = "steps";  // no | epoch | steps (every save_steps)
  int64_t save_total_limit = 0;         // 0 = keep every checkpoint
  int64_t gradient_accumulation_steps = 1;  // batches whose gradients add up to one optimizer step
  int64_t max_steps = -1;               // > 0: train this many optimizer steps (overrides num_train_epochs)
  bool load_best_model_at_end = false;
  // The evaluation metric that decides "best" (load_best_model_at_end, early stopping, the checkpoint that rotation
  // keeps), with or without the eval_ prefix; defaults(algo) sets the algorithm's main metric (core/algo.cpp).
  std::string metric_for_best_model;
  std::optional<bool> greater_is_better;  // unset: false for a metric whose name ends in "loss", else true (HF)
  int64_t early_stopping_patience = 0;  // evaluations without improvement; 0 = off
  double early_stopping_threshold = 0;  // how much the metric must improve to count as an improvement
  double max_grad_norm = 1.0;           // 0 = no clipping
  bool bf16 = false;
  bool fp16 = false;                    // CUDA only: fp16 autocast with dynamic loss scaling
  int64_t num_workers = 2;              // data loader threads
  int64_t image_size = 512;             // segmentation/detection input size
  int64_t max_bad_samples = 0;          // unreadable training images tolerated (skipped with a warning)
  std::string augmentation = "detr";    // detection: detr (flip + multi-scale + crop) | flip | none
  // Data-parallel training (docs/distributed.md).
  bool sync_batchnorm = false;          // BatchNorm statistics over the global batch
  int64_t ddp_timeout = 1800;           // seconds a collective may wait for the other ranks (PyTorch's default)

  // The defaults for `algo`: this struct's, overridden by the algorithm's row (AlgoInfo::hyperparameter_defaults).
  static Hyperparameters defaults(Algo algo);

  // Sets a parameter from text (flag value, or a string in a JSON file): checks name, type and range;
  // throws em::UsageError naming the parameter, the value and the valid range.
  void set(const std::string& name, const std::string& value);
  // Sets from a JSON value (number, bool or string); `where` names the file.
  void set_json(const std::string& name, const io::Json& value, const std::string& where);
  // Applies a whole --hyperparameters file (a JSON object).
  void apply_file(const std::string& path);

  // Cross-parameter checks and warnings (e.g. the platform's default lr 0.1 is high for AdamW).
  void validate() const;
  // Every parameter that applies to `algo`, by name (hyperparameters.json in the run directory).
  io::Json to_json() const;

  // The key of EvalResult::scalars that decides "best": metric_for_best_model without its eval_ prefix.
  std::string best_metric_key() const;
  // greater_is_better as HF resolves it: given, else false for a metric name ending in "loss".
  bool best_metric_greater() const;
  // eval_strategy=steps: evaluate every this many optimizer steps (eval_steps, 0 = save_steps); else 0.
  int64_t eval_interval() const;
};

// One row of the table: what a parameter is, for the docs, --help and validation.
struct ParamSpec {
  std::string name;
  std::string type;   // "int", "float", "bool", "string"
  std::string range;  // "[1, inf)" or "linear|cosine|..."
  std::string help;
  AlgoSet algos;      // where it applies
};
const std::vector<ParamSpec>& param_specs();

// A --hyperparameters file's JSON object (errors are em::UsageError naming the file): what apply_file applies, and
// what em-train's CLI reads first for its options that are not hyperparameters (tools/common/train_flags.cpp).
io::Json read_hyperparameters_file(const std::string& path);

}  // namespace em::train
