#include "em/metrics/score_files.hpp"

#include "em/core/log.hpp"
#include "em/metrics/classification_io.hpp"
#include "em/metrics/coco.hpp"
#include "em/metrics/segmentation_io.hpp"

#include <iterator>

namespace em::metrics {
namespace {

io::Json score_classification(const std::string& truth, const std::string& pred, const ScoreFilesOptions& o) {
  ClassificationMatchOptions options;
  options.allow_missing = o.allow_missing;
  const ClassificationScore score = score_prediction_files(truth, pred, options);
  log::info("scored {} of {} images, {} classes", score.num_scored, score.num_truth, score.metrics.labels.size());
  return score.metrics.to_json();
}

io::Json score_segmentation(const std::string& truth, const std::string& pred, const ScoreFilesOptions& o) {
  SegmentationScoreOptions options;
  options.ignore_index = o.ignore_index;
  options.reduce_labels = o.reduce_labels;
  options.allow_missing = o.allow_missing;
  const SegmentationScore score = score_segmentation_folders(truth, pred, options);
  log::info("scored {} of {} label maps, {} classes", score.num_scored, score.num_images, score.labels.size());
  return score.metrics.to_json(score.labels);
}

io::Json score_detection(const std::string& truth, const std::string& pred, const ScoreFilesOptions& o) {
  return evaluate_coco_files(truth, pred, o.threads);
}

struct ScorerRow {
  Algo algo;
  io::Json (*score)(const std::string& truth, const std::string& pred, const ScoreFilesOptions& options);
};
constexpr ScorerRow kScorers[] = {
    {Algo::classification, score_classification},
    {Algo::segmentation, score_segmentation},
    {Algo::detection, score_detection},
};
static_assert(one_row_per_algo(kScorers), "kScorers: one scorer per algorithm, in enum order");

}  // namespace

io::Json score_files(Algo algo, const std::string& truth, const std::string& predictions,
                     const ScoreFilesOptions& options) {
  return kScorers[index_of(algo)].score(truth, predictions, options);
}

}  // namespace em::metrics
