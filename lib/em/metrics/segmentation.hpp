// Semantic-segmentation metrics with the semantics of HF evaluate's `mean_iou`: per-class pixel areas summed over a
// whole split (streamed image by image), then IoU and accuracy per class, their NaN-skipping means, overall accuracy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "em/io/image.hpp"
#include "em/io/json.hpp"

namespace em::metrics {

// One evaluated image, for pictures (em-eval --plots): the image, its seg map and the predicted map (1 channel of
// label ids each, the image's size).
struct SegmentationExample {
  std::string name;  // the image's path in the dataset folder
  io::Image image, truth, prediction;
};

struct SegmentationMetrics {
  double mean_iou = 0.;          // np.nanmean(per_category_iou)
  double mean_accuracy = 0.;     // np.nanmean(per_category_accuracy)
  double overall_accuracy = 0.;  // sum(area_intersect) / sum(area_label)
  // NaN where undefined: IoU for a class absent from both prediction and truth (0/0), accuracy for a class absent
  // from the truth (0/0, even if it was predicted). NaNs are left out of the means; all-NaN gives a NaN mean.
  std::vector<double> per_category_iou;
  std::vector<double> per_category_accuracy;
  // The summed areas (pixel counts) the numbers come from, per class.
  std::vector<double> area_intersect, area_union, area_pred_label, area_label;

  // {"mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou": {label: v}, "per_category_accuracy":
  // {label: v}} with NaN written as null; labels[i] names class i (empty = the ids "0", "1", ...).
  io::Json to_json(const std::vector<std::string>& labels = {}) const;
};

// Streams (prediction, truth) label maps; each pixel is handled exactly as evaluate's intersect_and_union does:
//  - reduce_labels: truth 0 becomes 255, every truth value drops by 1, and 254 becomes 255 again;
//  - pixels whose (reduced) truth equals ignore_index are dropped;
//  - of the rest, a prediction in [0, num_labels) counts towards area_pred_label, a truth in [0, num_labels) towards
//    area_label and, when equal to the prediction, towards area_intersect. Values outside the range (e.g. a predicted
//    255) are counted nowhere, as np.histogram(range=(0, num_labels - 1)) drops them.
// Images may differ in size; only the pixel count of each pair must agree.
class SegmentationAccumulator {
 public:
  explicit SegmentationAccumulator(int num_labels, int ignore_index = 255, bool reduce_labels = false);

  // pred and truth hold n label values each (row-major maps of one or more images). Any integer types.
  template <typename P, typename T>
  void add(const P* pred, const T* truth, std::size_t n) {
    static_assert(std::is_integral_v<P> && std::is_integral_v<T>, "label maps hold integers");
    for (std::size_t i = 0; i < n; ++i) count(static_cast<int64_t>(pred[i]), static_cast<int64_t>(truth[i]));
  }
  // Adds another accumulator's areas (same num_labels/ignore_index/reduce_labels), e.g. from parallel workers.
  void merge(const SegmentationAccumulator& other);
  // Every area as one flat list (intersections, predictions, labels per class, then the pixels seen), and back: what
  // data-parallel evaluation sums over ranks.
  std::vector<int64_t> counts() const;
  void set_counts(const std::vector<int64_t>& counts);

  SegmentationMetrics compute() const;

  int num_labels() const { return num_labels_; }
  int ignore_index() const { return ignore_index_; }
  bool reduce_labels() const { return reduce_labels_; }
  int64_t num_pixels() const { return num_pixels_; }  // pixels seen, ignored ones included

 private:
  void count(int64_t pred, int64_t truth) {
    ++num_pixels_;
    if (reduce_labels_) {
      if (truth == 0) truth = 255;
      truth -= 1;
      if (truth == 254) truth = 255;
    }
    if (truth == ignore_index_) return;
    const bool pred_ok = pred >= 0 && pred < num_labels_;
    const bool truth_ok = truth >= 0 && truth < num_labels_;
    if (pred_ok) ++pred_area_[static_cast<std::size_t>(pred)];
    if (truth_ok) {
      ++label_area_[static_cast<std::size_t>(truth)];
      if (pred == truth) ++intersect_area_[static_cast<std::size_t>(truth)];
    }
  }

  int num_labels_;
  int ignore_index_;
  bool reduce_labels_;
  int64_t num_pixels_ = 0;
  std::vector<int64_t> intersect_area_, pred_area_, label_area_;
};

}  // namespace em::metrics
