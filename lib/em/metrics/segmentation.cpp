#include "em/metrics/segmentation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "em/core/error.hpp"
#include "em/metrics/numeric.hpp"

namespace em::metrics {

SegmentationAccumulator::SegmentationAccumulator(int num_labels, int ignore_index, bool reduce_labels)
    : num_labels_(num_labels), ignore_index_(ignore_index), reduce_labels_(reduce_labels) {
  if (num_labels < 1) fail("segmentation metrics: num_labels is {}; it must be at least 1", num_labels);
  intersect_area_.assign(static_cast<std::size_t>(num_labels), 0);
  pred_area_ = intersect_area_;
  label_area_ = intersect_area_;
}

void SegmentationAccumulator::merge(const SegmentationAccumulator& other) {
  if (other.num_labels_ != num_labels_ || other.ignore_index_ != ignore_index_ ||
      other.reduce_labels_ != reduce_labels_)
    fail("segmentation metrics: cannot merge accumulators with different num_labels/ignore_index/reduce_labels");
  for (std::size_t c = 0; c < intersect_area_.size(); ++c) {
    intersect_area_[c] += other.intersect_area_[c];
    pred_area_[c] += other.pred_area_[c];
    label_area_[c] += other.label_area_[c];
  }
  num_pixels_ += other.num_pixels_;
}

std::vector<int64_t> SegmentationAccumulator::counts() const {
  std::vector<int64_t> c = intersect_area_;
  c.insert(c.end(), pred_area_.begin(), pred_area_.end());
  c.insert(c.end(), label_area_.begin(), label_area_.end());
  c.push_back(num_pixels_);
  return c;
}

void SegmentationAccumulator::set_counts(const std::vector<int64_t>& counts) {
  const std::size_t k = intersect_area_.size();
  if (counts.size() != 3 * k + 1) fail("segmentation metrics: {} counts for {} labels", counts.size(), k);
  std::copy(counts.begin(), counts.begin() + k, intersect_area_.begin());
  std::copy(counts.begin() + k, counts.begin() + 2 * k, pred_area_.begin());
  std::copy(counts.begin() + 2 * k, counts.begin() + 3 * k, label_area_.begin());
  num_pixels_ = counts.back();
}

SegmentationMetrics SegmentationAccumulator::compute() const {
  // evaluate keeps the totals in float64 arrays; pixel counts are exact in a double below 2^53.
  SegmentationMetrics m;
  const std::size_t k = intersect_area_.size();
  for (std::size_t c = 0; c < k; ++c) {
    m.area_intersect.push_back(static_cast<double>(intersect_area_[c]));
    m.area_pred_label.push_back(static_cast<double>(pred_area_[c]));
    m.area_label.push_back(static_cast<double>(label_area_[c]));
    m.area_union.push_back(m.area_pred_label[c] + m.area_label[c] - m.area_intersect[c]);
  }
  // 0/0 gives NaN here exactly as NumPy's float division does.
  m.overall_accuracy = numpy_sum(m.area_intersect) / numpy_sum(m.area_label);
  for (std::size_t c = 0; c < k; ++c) {
    m.per_category_iou.push_back(m.area_intersect[c] / m.area_union[c]);
    m.per_category_accuracy.push_back(m.area_intersect[c] / m.area_label[c]);
  }
  m.mean_iou = numpy_nanmean(m.per_category_iou);
  m.mean_accuracy = numpy_nanmean(m.per_category_accuracy);
  return m;
}

namespace {
io::Json number_or_null(double v) { return std::isfinite(v) ? io::Json(v) : io::Json(nullptr); }
}  // namespace

io::Json SegmentationMetrics::to_json(const std::vector<std::string>& labels) const {
  const std::size_t k = per_category_iou.size();
  if (!labels.empty() && labels.size() != k)
    fail("segmentation metrics: {} label names given for {} classes", labels.size(), k);
  std::vector<std::string> names = labels;
  if (names.empty())
    for (std::size_t c = 0; c < k; ++c) names.push_back(std::to_string(c));
  std::set<std::string> seen;
  for (const auto& n : names)
    if (!seen.insert(n).second) fail("segmentation metrics: label name \"{}\" is used by two classes", n);

  io::Json out = io::Json::object();
  out["mean_iou"] = number_or_null(mean_iou);
  out["mean_accuracy"] = number_or_null(mean_accuracy);
  out["overall_accuracy"] = number_or_null(overall_accuracy);
  io::Json iou = io::Json::object(), acc = io::Json::object();
  for (std::size_t c = 0; c < k; ++c) {
    iou[names[c]] = number_or_null(per_category_iou[c]);
    acc[names[c]] = number_or_null(per_category_accuracy[c]);
  }
  out["per_category_iou"] = std::move(iou);
  out["per_category_accuracy"] = std::move(acc);
  return out;
}

}  // namespace em::metrics
