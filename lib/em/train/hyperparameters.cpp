#include "em/train/hyperparameters.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"

#include <cmath>
#include <functional>
#include <limits>

namespace em::train {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void bad(const std::string& name, const std::string& value, const std::string& expected) {
  usage_fail("hyperparameter {}: invalid value '{}' (expected {})", name, value, expected);
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r"), e = s.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

double parse_float(const std::string& name, const std::string& raw, double lo, double hi, bool lo_open,
                   const std::string& range) {
  std::string s = trim(raw);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    bad(name, raw, "a number in " + range);
  }
  if (used != s.size() || !std::isfinite(v)) bad(name, raw, "a number in " + range);
  if (v < lo || v > hi || (lo_open && v == lo)) bad(name, raw, "a number in " + range);
  return v;
}

int64_t parse_int(const std::string& name, const std::string& raw, double lo, double hi, const std::string& range) {
  std::string s = trim(raw);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);  // accepts "3" and "3.0" (platforms pass numbers as strings)
  } catch (const std::exception&) {
    bad(name, raw, "an integer in " + range);
  }
  if (used != s.size() || !std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15)
    bad(name, raw, "an integer in " + range);
  if (v < lo || v > hi) bad(name, raw, "an integer in " + range);
  return static_cast<int64_t>(v);
}

bool parse_bool(const std::string& name, const std::string& raw) {
  std::string s = trim(raw);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  bad(name, raw, "true or false");
}

std::string parse_choice(const std::string& name, const std::string& raw, const std::vector<std::string>& choices) {
  std::string s = trim(raw);
  for (const auto& c : choices)
    if (s == c) return s;
  std::string all;
  for (const auto& c : choices) all += (all.empty() ? "" : ", ") + c;
  bad(name, raw, "one of " + all);
}

struct Entry {
  ParamSpec spec;
  std::function<void(Hyperparameters&, const std::string&)> set;
  std::function<io::Json(const Hyperparameters&)> get;
};

#define EM_INT_PARAM(field, lo, hi, range, help, algos)                                            \
  Entry {                                                                                          \
    {#field, "int", range, help, algos},                                                           \
        [](Hyperparameters& h, const std::string& v) { h.field = parse_int(#field, v, lo, hi, range); }, \
        [](const Hyperparameters& h) { return io::Json(h.field); }                                  \
  }
#define EM_FLOAT_PARAM(field, lo, hi, lo_open, range, help, algos)                                            \
  Entry {                                                                                                     \
    {#field, "float", range, help, algos},                                                                    \
        [](Hyperparameters& h, const std::string& v) { h.field = parse_float(#field, v, lo, hi, lo_open, range); }, \
        [](const Hyperparameters& h) { return io::Json(h.field); }                                             \
  }
#define EM_BOOL_PARAM(field, help)                                                                        \
  Entry {                                                                                                 \
    {#field, "bool", "true|false", help, AlgoSet::all()},                                           \
        [](Hyperparameters& h, const std::string& v) { h.field = parse_bool(#field, v); },                 \
        [](const Hyperparameters& h) { return io::Json(h.field); }                                         \
  }
#define EM_CHOICE_PARAM(field, choices, help)                                                                 \
  Entry {                                                                                                     \
    {#field, "string", "", help, AlgoSet::all()},                                                       \
        [](Hyperparameters& h, const std::string& v) { h.field = parse_choice(#field, v, choices); },         \
        [](const Hyperparameters& h) { return io::Json(h.field); }                                             \
  }

constexpr AlgoSet kAll = AlgoSet::all();
constexpr AlgoSet kClassification{Algo::classification};
constexpr AlgoSet kDetection{Algo::detection};
constexpr AlgoSet kSegmentationDetection{Algo::segmentation, Algo::detection};

// Limits that differ per algorithm beyond each parameter's own range (the platform's table: classification trains
// on batches of at least 2 and whole epochs), checked by validate().
struct AlgoLimits {
  Algo algo;
  int64_t min_train_batch_size;
  bool whole_epochs;
};
constexpr AlgoLimits kLimits[] = {
    {Algo::classification, 2, true},
    {Algo::segmentation, 1, false},
    {Algo::detection, 1, false},
};
static_assert(one_row_per_algo(kLimits), "kLimits: one row per algorithm, in enum order");

const std::vector<std::string> kSchedules{"linear", "cosine", "constant", "constant_with_warmup"};
const std::vector<std::string> kEvalStrategies{"no", "epoch", "steps"};
const std::vector<std::string> kSaveStrategies{"no", "epoch", "steps"};
const std::vector<std::string> kDetectionAugmentations{"detr", "flip", "none"};

std::vector<Entry> make_table() {
  std::vector<Entry> t{
      EM_INT_PARAM(input_size, 1, kInf, "[1, inf)", "Images are resized to input_size x input_size", kClassification),
      EM_FLOAT_PARAM(learning_rate, 0, kInf, false, "[0, inf)", "Initial AdamW learning rate", kAll),
      // The batch-size range differs per algorithm (classification [2, inf)): checked in validate().
      EM_INT_PARAM(per_device_train_batch_size, 1, kInf, "[1, inf) ([2, inf) for classification)",
                   "Training batch size", kAll),
      EM_INT_PARAM(per_device_eval_batch_size, 1, kInf, "[1, inf)", "Evaluation batch size", kAll),
      EM_INT_PARAM(gradient_accumulation_steps, 1, kInf, "[1, inf)",
                   "Batches whose gradients add up to one optimizer step (each batch's loss divided by their "
                   "number); steps of logging, evaluation and saving count optimizer steps",
                   kAll),
      EM_FLOAT_PARAM(num_train_epochs, 0, kInf, true, "(0, inf) (an integer >= 1 for classification)",
                     "Training epochs (fractions allowed for segmentation and detection)", kAll),
      Entry{{"max_steps", "int", "-1 or [1, inf)",
             "Optimizer steps to train: a positive N overrides num_train_epochs (-1 = train num_train_epochs)",
             kAll},
            [](Hyperparameters& h, const std::string& v) {
              const std::string expected = "-1 (train num_train_epochs) or an integer in [1, inf)";
              try {
                h.max_steps = parse_int("max_steps", v, -1, kInf, expected);
              } catch (const UsageError&) {
                bad("max_steps", v, expected);
              }
              if (h.max_steps == 0) bad("max_steps", v, expected);
            },
            [](const Hyperparameters& h) { return io::Json(h.max_steps); }},
      EM_FLOAT_PARAM(threshold, 0, 1, false, "[0, 1]", "Score threshold of returned detections", kDetection),
      EM_INT_PARAM(save_steps, 1, kInf, "[1, inf)", "Save a checkpoint every N optimizer steps", kAll),
      EM_INT_PARAM(seed, 0, 9.0e15, "[0, 9e15]", "Seed of initialisation, shuffling and augmentation", kAll),
      EM_FLOAT_PARAM(weight_decay, 0, kInf, false, "[0, inf)", "AdamW decoupled weight decay", kAll),
      EM_FLOAT_PARAM(warmup_ratio, 0, 1, false, "[0, 1]", "Fraction of steps with linear warmup", kAll),
      EM_CHOICE_PARAM(lr_scheduler_type, kSchedules, "Learning-rate schedule after warmup"),
      EM_INT_PARAM(logging_steps, 1, kInf, "[1, inf)", "Log loss and learning rate every N steps", kAll),
      EM_CHOICE_PARAM(eval_strategy, kEvalStrategies, "When to evaluate on validation"),
      EM_INT_PARAM(eval_steps, 0, kInf, "[0, inf)", "With eval_strategy=steps: every N steps (0 = save_steps)", kAll),
      EM_CHOICE_PARAM(save_strategy, kSaveStrategies,
                      "When to write checkpoints: steps (every save_steps), epoch (at each epoch end) or no (none; "
                      "a stop signal still saves one)"),
      EM_INT_PARAM(save_total_limit, 0, kInf, "[0, inf)",
                   "Keep at most N checkpoints (0 = all); the best one is never removed", kAll),
      EM_BOOL_PARAM(load_best_model_at_end, "Write the best evaluated checkpoint as model/ instead of the last"),
      Entry{{"metric_for_best_model", "string", "an evaluation metric, with or without eval_",
             "The evaluation metric that decides the best model (load_best_model_at_end, early stopping, "
             "save_total_limit): accuracy, f1, loss, mean_iou, AP, ... (default: the algorithm's main metric)",
             kAll},
            [](Hyperparameters& h, const std::string& v) {
              const std::string name = trim(v);
              h.metric_for_best_model = name.empty() ? algo_info(h.algo).main_metric : name;
            },
            [](const Hyperparameters& h) { return io::Json(h.metric_for_best_model); }},
      Entry{{"greater_is_better", "bool", "true|false",
             "Whether a larger metric_for_best_model is better (default: false when its name ends in loss, else "
             "true)",
             kAll},
            [](Hyperparameters& h, const std::string& v) {
              if (trim(v).empty())
                h.greater_is_better.reset();  // HF's None: decided by the metric's name
              else
                h.greater_is_better = parse_bool("greater_is_better", v);
            },
            [](const Hyperparameters& h) { return io::Json(h.best_metric_greater()); }},
      EM_INT_PARAM(early_stopping_patience, 0, kInf, "[0, inf)",
                   "Stop after N evaluations without improvement (0 = off)", kAll),
      EM_FLOAT_PARAM(early_stopping_threshold, 0, kInf, false, "[0, inf)",
                     "With early_stopping_patience: the metric must beat the best by more than this to count as an "
                     "improvement",
                     kAll),
      EM_FLOAT_PARAM(max_grad_norm, 0, kInf, false, "[0, inf)", "Clip the gradient norm (0 = off)", kAll),
      EM_BOOL_PARAM(bf16, "bf16 autocast for forward passes (AMX/AVX-512 CPUs, GPUs since Ampere)"),
      EM_BOOL_PARAM(fp16, "fp16 autocast with dynamic loss scaling (CUDA only; the scale is kept in checkpoints)"),
      EM_INT_PARAM(num_workers, 0, 64, "[0, 64]", "Data loader threads (0 = load in the training thread)", kAll),
      EM_INT_PARAM(image_size, 32, 8192, "[32, 8192]", "Input size of segmentation / detection images",
                   kSegmentationDetection),
      EM_INT_PARAM(max_bad_samples, 0, kInf, "[0, inf)",
                   "Unreadable training images skipped (with a warning) before failing", kAll),
      EM_BOOL_PARAM(sync_batchnorm,
                    "Data-parallel runs: BatchNorm statistics over the global batch instead of each process's"),
      EM_INT_PARAM(ddp_timeout, 1, kInf, "[1, inf)",
                   "Data-parallel runs: seconds to wait for the other processes before failing", kAll),
      Entry{{"augmentation", "string", "detr|flip|none",
             "Detection training augmentation: detr = DETR's flip + multi-scale resize + random crop, flip = "
             "horizontal flip only, none = resize only",
             kDetection},
            [](Hyperparameters& h, const std::string& v) {
              h.augmentation = parse_choice("augmentation", v, kDetectionAugmentations);
            },
            [](const Hyperparameters& h) { return io::Json(h.augmentation); }},
  };
  for (auto& e : t) {
    if (e.spec.name == "lr_scheduler_type") e.spec.range = "linear|cosine|constant|constant_with_warmup";
    if (e.spec.name == "eval_strategy" || e.spec.name == "save_strategy") e.spec.range = "no|epoch|steps";
  }
  return t;
}

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = make_table();
  return t;
}

const Entry& find_entry(const std::string& name) {
  for (const auto& e : table())
    if (e.spec.name == name) return e;
  std::string names;
  for (const auto& e : table()) names += (names.empty() ? "" : ", ") + e.spec.name;
  usage_fail("unknown hyperparameter '{}' (known: {})", name, names);
}

}  // namespace

const std::vector<ParamSpec>& param_specs() {
  static const std::vector<ParamSpec> specs = [] {
    std::vector<ParamSpec> s;
    for (const auto& e : table()) s.push_back(e.spec);
    return s;
  }();
  return specs;
}

Hyperparameters Hyperparameters::defaults(Algo algo) {
  Hyperparameters h;
  h.algo = algo;
  const AlgoInfo& row = algo_info(algo);
  h.metric_for_best_model = row.main_metric;
  const io::Json overrides = io::parse_json(row.hyperparameter_defaults, "core/algo.cpp");
  for (auto it = overrides.begin(); it != overrides.end(); ++it)
    h.set_json(it.key(), it.value(), fmt::format("the {} row of core/algo.cpp", row.name));
  return h;
}

void Hyperparameters::set(const std::string& name, const std::string& value) {
  const Entry& e = find_entry(name);
  if (!e.spec.algos.contains(algo))
    usage_fail("hyperparameter {} does not apply to --algo {}", name, algo_name(algo));
  e.set(*this, value);
}

void Hyperparameters::set_json(const std::string& name, const io::Json& value, const std::string& where) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_boolean()) {
    text = value.get<bool>() ? "true" : "false";
  } else if (value.is_number_integer()) {
    text = std::to_string(value.get<int64_t>());
  } else if (value.is_number()) {
    text = fmt::format("{:.17g}", value.get<double>());
  } else {
    usage_fail("{}: hyperparameter {}: expected a number, a boolean or a string, got {}", where, name,
               io::dump_json(value));
  }
  try {
    set(name, text);
  } catch (const UsageError& e) {
    throw UsageError(where + ": " + e.what());
  }
}

io::Json read_hyperparameters_file(const std::string& path) {
  io::Json doc;
  try {
    doc = io::read_json_file(path);
  } catch (const Error& e) {
    throw UsageError(std::string("--hyperparameters: ") + e.what());
  }
  if (!doc.is_object()) usage_fail("{}: --hyperparameters expects a JSON object {{\"name\": value, ...}}", path);
  return doc;
}

void Hyperparameters::apply_file(const std::string& path) {
  const io::Json doc = read_hyperparameters_file(path);
  for (const auto& [name, value] : doc.items()) set_json(name, value, path);
}

void Hyperparameters::validate() const {
  const AlgoLimits& limits = kLimits[index_of(algo)];
  if (per_device_train_batch_size < limits.min_train_batch_size)
    usage_fail("hyperparameter per_device_train_batch_size: invalid value '{}' (expected an integer in [{}, inf) "
               "for {})",
               per_device_train_batch_size, limits.min_train_batch_size, algo_name(algo));
  if (limits.whole_epochs && (num_train_epochs < 1 || num_train_epochs != std::floor(num_train_epochs)))
    usage_fail("hyperparameter num_train_epochs: invalid value '{}' (expected an integer in [1, inf) for {})",
               num_train_epochs, algo_name(algo));
  if (bf16 && fp16) usage_fail("hyperparameters bf16 and fp16 are both true: choose one lower precision");
  // HF Trainer refuses these too (TrainingArguments: load_best_model_at_end needs matching eval and save
  // strategies; EarlyStoppingCallback needs an evaluation strategy): without evaluations they would do nothing.
  if (eval_strategy == "no" && load_best_model_at_end)
    usage_fail("hyperparameter load_best_model_at_end needs evaluations to pick the best checkpoint, but "
               "eval_strategy is no: set eval_strategy to epoch or steps (HF Trainer refuses this combination too)");
  if (eval_strategy == "no" && early_stopping_patience > 0)
    usage_fail("hyperparameter early_stopping_patience {} counts evaluations without improvement, but eval_strategy "
               "is no: set eval_strategy to epoch or steps (HF Trainer refuses this combination too)",
               early_stopping_patience);
  // HF TrainingArguments: the best model is a checkpoint, so checkpoints must be written where evaluations are.
  if (load_best_model_at_end && save_strategy != eval_strategy)
    usage_fail("hyperparameter load_best_model_at_end needs a checkpoint at each evaluation: save_strategy ({}) must "
               "match eval_strategy ({}); set --save_strategy {} (HF Trainer refuses this combination too)",
               save_strategy, eval_strategy, eval_strategy);
  if (load_best_model_at_end && eval_strategy == "steps" && save_steps % eval_interval() != 0)
    usage_fail("hyperparameter load_best_model_at_end needs save_steps to be a round multiple of the evaluation "
               "interval, but save_steps {} is not a multiple of eval_steps {} (HF Trainer refuses this too)",
               save_steps, eval_interval());
  if (early_stopping_threshold > 0 && early_stopping_patience == 0)
    usage_fail("hyperparameter early_stopping_threshold {} applies to early stopping, which is off "
               "(early_stopping_patience 0): set early_stopping_patience too",
               early_stopping_threshold);
  if (early_stopping_patience > 0 && !load_best_model_at_end)
    log::warn("early stopping without load_best_model_at_end: model/ will be the last weights, not the best ones "
              "(as HF Trainer, which warns too)");
  if (learning_rate >= 0.01)
    log::warn("learning_rate {} is very high for AdamW (the platform's classification default is 0.1, kept for "
              "compatibility); 1e-3 to 1e-4 usually trains better (see docs/training.md)",
              learning_rate);
}

std::string Hyperparameters::best_metric_key() const {
  const std::string prefix = "eval_";
  const std::string& name = metric_for_best_model.empty() ? std::string(algo_info(algo).main_metric)
                                                          : metric_for_best_model;
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

bool Hyperparameters::best_metric_greater() const {
  if (greater_is_better) return *greater_is_better;
  const std::string key = best_metric_key(), suffix = "loss";
  return !(key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0);
}

int64_t Hyperparameters::eval_interval() const {
  return eval_strategy == "steps" ? (eval_steps > 0 ? eval_steps : save_steps) : 0;
}

io::Json Hyperparameters::to_json() const {
  io::Json out = io::Json::object();
  out["algo"] = algo_name(algo);
  for (const auto& e : table())
    if (e.spec.algos.contains(algo)) out[e.spec.name] = e.get(*this);
  return out;
}

}  // namespace em::train
