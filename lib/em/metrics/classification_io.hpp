// The classification prediction file (JSONL, one object per image, written by em-eval, read by em-metrics), the
// truth it is scored against (a dataset split folder or a JSONL file), and the matching of the two into metrics.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "em/io/json.hpp"
#include "em/metrics/classification.hpp"

namespace em::metrics {

// One line of a prediction file:
//   {"image": "validation/cat/001.png", "label": "cat", "score": 0.93, "label_id": 3}
// `image` is relative to the dataset folder (the parent of the split folder); "score" and "label_id" may be absent.
struct ClassificationPrediction {
  std::string image;
  std::string label;
  std::optional<double> score;
  std::optional<int64_t> label_id;
  std::size_t line = 0;  // 1-based line in the file it was read from (0 = not read from a file)
};

// One truth record: {"image": "validation/cat/001.png", "label": "cat"}.
struct ClassificationTruth {
  std::string image;
  std::string label;
  std::size_t line = 0;  // 1-based line of a JSONL truth file (0 = from a folder)
};

// The form image paths are compared in: lexically normal, '/' separators, no leading "./".
std::string normalize_image_path(const std::string& path);

// --- prediction JSONL ---
io::Json prediction_to_json(const ClassificationPrediction& prediction);
// One JSONL line, newline included (em-eval streams these to stdout or a file).
std::string format_prediction_line(const ClassificationPrediction& prediction);
void write_predictions_jsonl(const std::string& path, const std::vector<ClassificationPrediction>& predictions);
// Blank lines are skipped. Throws em::Error "<what>:<line>: ..." for invalid JSON, a non-object, a missing or
// mistyped field, or an image predicted twice; "<what>: no predictions" for an empty file.
std::vector<ClassificationPrediction> parse_predictions_jsonl(const std::string& text, const std::string& what);
std::vector<ClassificationPrediction> read_predictions_jsonl(const std::string& path);  // "-" = stdin

// --- truth ---
// A JSONL file of {"image", "label"} objects (other fields are ignored); same error rules as the predictions.
std::vector<ClassificationTruth> parse_truth_jsonl(const std::string& text, const std::string& what);
// A classification split folder, DIR/validation/{label}/image, listed by em::data::list_classification_split (the
// listing em-eval evaluates: image extensions only, hidden entries skipped), with paths relative to DIR
// ("validation/cat/001.png"), sorted by label then file name.
std::vector<ClassificationTruth> list_truth_split(const std::filesystem::path& split_dir);
// A folder -> list_truth_split, otherwise a JSONL file ("-" = stdin) -> parse_truth_jsonl.
std::vector<ClassificationTruth> read_truth(const std::string& path);

// --- scoring ---
struct ClassificationMatchOptions {
  // Score only the truth images that have a prediction (and warn with the count) instead of failing.
  bool allow_missing = false;
  // The class list, in order (e.g. the model's id2label). Empty: the sorted union of the labels of the scored truth
  // images and of the predictions. Given: a label outside it is an error.
  std::vector<std::string> labels;
  // Names used in messages.
  std::string truth_name = "truth";
  std::string predictions_name = "predictions";
};

struct ClassificationScore {
  ClassificationMetrics metrics;
  std::size_t num_truth = 0;    // truth images
  std::size_t num_scored = 0;   // truth images with a prediction
};

// Pairs predictions with truth images by normalised path and computes the metrics. Errors (em::Error, exit 1):
// a prediction for an image that is not in the truth (always), truth images without a prediction (unless
// allow_missing), a truth image listed twice, nothing to score. Messages give the count and the first few paths.
ClassificationScore score_predictions(const std::vector<ClassificationTruth>& truth,
                                      const std::vector<ClassificationPrediction>& predictions,
                                      const ClassificationMatchOptions& options = {});

// em-metrics --algo classification: read_truth(truth_path) + read_predictions_jsonl(predictions_path) +
// score_predictions, with the paths as the names in messages.
ClassificationScore score_prediction_files(const std::string& truth_path, const std::string& predictions_path,
                                           ClassificationMatchOptions options = {});

}  // namespace em::metrics
