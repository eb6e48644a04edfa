// Classification metrics: accuracy, macro precision/recall/F1, per-class values and the confusion matrix,
// equal to scikit-learn's accuracy_score and precision_recall_fscore_support(average="macro", zero_division=0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/io/json.hpp"

namespace em::metrics {

struct ClassMetrics {
  double precision = 0.;
  double recall = 0.;
  double f1 = 0.;
  int64_t support = 0;  // samples whose truth is this class
  int64_t predicted = 0;  // samples predicted as this class
  // False when the class has neither truth nor predicted samples: then precision/recall/f1 are 0 (sklearn's
  // zero_division=0 values) and the class is left out of the macro means, as sklearn does without labels=.
  bool present = false;
};

struct ClassificationMetrics {
  double accuracy = 0.;
  double precision = 0.;  // macro means over the present classes
  double recall = 0.;
  double f1 = 0.;
  int64_t num_samples = 0;
  std::vector<std::string> labels;
  std::vector<ClassMetrics> per_class;              // one per label, in label order
  std::vector<std::vector<int64_t>> confusion_matrix;  // [truth][predicted]

  // {"accuracy", "precision", "recall", "f1", "per_class": {label: {precision, recall, f1, support}},
  //  "confusion_matrix": {"labels": [...], "matrix": [[...]]}} — rows are truth, columns predictions.
  io::Json to_json() const;
};

// Streams (truth, predicted) label-index pairs into a confusion matrix; compute() derives everything from it.
//
// Macro averages run over the classes present in the truth OR the predictions — the classes sklearn sees when it
// is given the label strings/ids without labels=. A class of the label list with no sample on either side does
// not dilute the means (sklearn with labels=range(num_classes) would count it as 0); it still gets a per-class
// row with zeros. See docs/metrics.md.
class ClassificationAccumulator {
 public:
  explicit ClassificationAccumulator(std::vector<std::string> labels);

  // Throws em::Error when an index is outside [0, num_classes).
  void add(int64_t truth, int64_t predicted);
  // Adds another accumulator's counts (same labels), e.g. from parallel workers.
  void merge(const ClassificationAccumulator& other);
  // Every count as one flat list (the confusion matrix, row-major, then the number of samples), and back: what
  // data-parallel evaluation sums over ranks.
  std::vector<int64_t> counts() const;
  void set_counts(const std::vector<int64_t>& counts);

  // Throws em::Error when nothing was added (accuracy of zero samples is undefined).
  ClassificationMetrics compute() const;

  std::size_t num_classes() const { return labels_.size(); }
  int64_t num_samples() const { return num_samples_; }
  const std::vector<std::string>& labels() const { return labels_; }

 private:
  std::vector<std::string> labels_;
  std::vector<int64_t> matrix_;  // num_classes x num_classes, row = truth
  int64_t num_samples_ = 0;
};

}  // namespace em::metrics
