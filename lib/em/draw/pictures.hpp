// The pictures the tools write, one entry point each: em-predict --draw, em-eval --plots, em-train's plots/ (and
// em-plot). Each turns what the tool already computed (responses, metrics, metrics.jsonl) into PNG files.
#pragma once
#include <string>
#include <vector>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"
#include "em/metrics/coco.hpp"
#include "em/metrics/segmentation.hpp"

namespace em::draw {

// em-predict --draw: image i (its file's bytes, decoded again here) with its response drawn (draw_prediction),
// written to paths[i] (PNG, parent folders created). paths, images and responses have one entry per image.
void write_prediction_pictures(const std::vector<std::string>& paths, const std::vector<std::string>& images,
                               Algo algo, const std::vector<io::Json>& responses,
                               const std::vector<std::string>& labels);

// em-eval --plots DIR: what the metrics JSON of one evaluation shows as pictures. Files (docs/em-eval.md):
//   classification  confusion_matrix.png, confusion_matrix_normalized.png, per_class_metrics.png
//   segmentation    per_class_iou.png, examples/<i>_<image name>.png (image | truth | prediction)
//   detection       pr_curve.png (means over classes), pr_curves_per_class.png (<= 20 classes), per_class_ap.png
struct EvalPlotInput {
  Algo algo = Algo::classification;
  io::Json metrics;                                        // what em-eval prints
  std::vector<std::string> labels;                         // the model's id2label
  const metrics::CocoEvalResult* coco = nullptr;           // detection
  std::vector<metrics::SegmentationExample> examples;      // segmentation
};
// Returns the paths written, in writing order.
std::vector<std::string> write_eval_plots(const std::string& dir, const EvalPlotInput& input);

// A run's metrics.jsonl as curves against step: one chart per logged value (loss, learning_rate, grad_norm, loss
// terms, every eval_ metric; per-class values such as eval_iou/<label> share one chart), each PNG named after the
// value, and results.png with all of them. Lines cut short by a crash are skipped; a missing or empty file is an
// em::Error naming it. Writes into out_dir (run_dir/plots when empty); returns the paths written.
std::vector<std::string> write_run_plots(const std::string& run_dir, const std::string& out_dir = "");

}  // namespace em::draw
