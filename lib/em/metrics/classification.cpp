#include "em/metrics/classification.hpp"

#include <algorithm>
#include <set>

#include "em/core/error.hpp"
#include "em/metrics/numeric.hpp"

namespace em::metrics {

ClassificationAccumulator::ClassificationAccumulator(std::vector<std::string> labels)
    : labels_(std::move(labels)), matrix_(labels_.size() * labels_.size(), 0) {
  if (labels_.empty()) fail("classification metrics: the label list is empty; give at least one class");
  std::set<std::string> seen;
  for (const auto& label : labels_)
    if (!seen.insert(label).second) fail("classification metrics: label \"{}\" appears twice in the label list", label);
}

void ClassificationAccumulator::add(int64_t truth, int64_t predicted) {
  const auto k = static_cast<int64_t>(labels_.size());
  if (truth < 0 || truth >= k) fail("classification metrics: truth label index {} is outside [0, {})", truth, k);
  if (predicted < 0 || predicted >= k)
    fail("classification metrics: predicted label index {} is outside [0, {})", predicted, k);
  ++matrix_[static_cast<std::size_t>(truth * k + predicted)];
  ++num_samples_;
}

void ClassificationAccumulator::merge(const ClassificationAccumulator& other) {
  if (other.labels_ != labels_) fail("classification metrics: cannot merge accumulators with different label lists");
  for (std::size_t i = 0; i < matrix_.size(); ++i) matrix_[i] += other.matrix_[i];
  num_samples_ += other.num_samples_;
}

std::vector<int64_t> ClassificationAccumulator::counts() const {
  std::vector<int64_t> c = matrix_;
  c.push_back(num_samples_);
  return c;
}

void ClassificationAccumulator::set_counts(const std::vector<int64_t>& counts) {
  if (counts.size() != matrix_.size() + 1) fail("classification metrics: {} counts for {} labels", counts.size(), labels_.size());
  std::copy(counts.begin(), counts.end() - 1, matrix_.begin());
  num_samples_ = counts.back();
}

ClassificationMetrics ClassificationAccumulator::compute() const {
  if (num_samples_ == 0) fail("classification metrics: no samples to score");
  const std::size_t k = labels_.size();
  ClassificationMetrics m;
  m.labels = labels_;
  m.num_samples = num_samples_;
  m.confusion_matrix.assign(k, std::vector<int64_t>(k, 0));
  m.per_class.resize(k);
  int64_t correct = 0;
  for (std::size_t t = 0; t < k; ++t) {
    for (std::size_t p = 0; p < k; ++p) {
      const int64_t c = matrix_[t * k + p];
      m.confusion_matrix[t][p] = c;
      m.per_class[t].support += c;
      m.per_class[p].predicted += c;
    }
    correct += matrix_[t * k + t];
  }
  // accuracy_score: mean of (y_true == y_pred); the count is an exact integer, so one division matches it.
  m.accuracy = static_cast<double>(correct) / static_cast<double>(num_samples_);

  std::vector<double> precisions, recalls, f1s;
  for (std::size_t c = 0; c < k; ++c) {
    ClassMetrics& cm = m.per_class[c];
    const auto tp = static_cast<double>(matrix_[c * k + c]);
    cm.present = cm.support > 0 || cm.predicted > 0;
    // sklearn _prf_divide with zero_division=0: 0/0 gives 0.
    cm.precision = cm.predicted > 0 ? tp / static_cast<double>(cm.predicted) : 0.;
    cm.recall = cm.support > 0 ? tp / static_cast<double>(cm.support) : 0.;
    // sklearn 1.2: f = (1 + beta2) * P * R / (beta2 * P + R), denominator 0 replaced by 1.
    const double denom = cm.precision + cm.recall;
    cm.f1 = 2. * cm.precision * cm.recall / (denom == 0. ? 1. : denom);
    if (cm.present) {
      precisions.push_back(cm.precision);
      recalls.push_back(cm.recall);
      f1s.push_back(cm.f1);
    }
  }
  // np.average(..., weights=None) over the labels sklearn saw (unique_labels(y_true, y_pred)).
  m.precision = numpy_mean(precisions);
  m.recall = numpy_mean(recalls);
  m.f1 = numpy_mean(f1s);
  return m;
}

io::Json ClassificationMetrics::to_json() const {
  io::Json out = io::Json::object();
  out["accuracy"] = accuracy;
  out["precision"] = precision;
  out["recall"] = recall;
  out["f1"] = f1;
  io::Json classes = io::Json::object();
  for (std::size_t c = 0; c < labels.size(); ++c) {
    const ClassMetrics& cm = per_class[c];
    classes[labels[c]] = {{"precision", cm.precision}, {"recall", cm.recall}, {"f1", cm.f1}, {"support", cm.support}};
  }
  out["per_class"] = std::move(classes);
  out["confusion_matrix"] = {{"labels", labels}, {"matrix", confusion_matrix}};
  return out;
}

}  // namespace em::metrics
