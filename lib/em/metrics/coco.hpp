// COCO box evaluation (AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l, per-category AP) with the exact semantics of
// pycocotools COCOeval(iouType="bbox"): ground truth and result files in, the 12 summary numbers and per-class AP out.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "em/data/coco_file.hpp"
#include "em/io/json.hpp"

namespace em::metrics {

// ---- results (the COCO results format: [{"image_id", "category_id", "bbox", "score"}], extra fields ignored) ----

struct CocoDetection {
  std::int64_t image_id = 0;
  std::int64_t category_id = 0;
  std::array<double, 4> bbox{};  // [x, y, w, h]; its area for the size ranges is w*h, as pycocotools loadRes sets
  double score = 0;
};

struct CocoResults {
  std::vector<CocoDetection> detections;
};

// Parse / load. `what` (usually the path) prefixes every error message, which names the field and the value seen.
// simdjson's DOM parser: result files of millions of boxes parse in well under a second. (The ground truth is an
// annotation file: data::read_coco_ground_truth.)
CocoResults parse_coco_results(std::string_view json_text, const std::string& what);
CocoResults load_coco_results(const std::string& path);  // "-" = stdin

// ---- evaluation ----

struct CocoAreaRange {
  std::string label;
  double min_area = 0;  // inclusive, compared with the ground truth's "area" and the detection's w*h
  double max_area = 0;  // inclusive
};

// np.linspace(start, stop, num) with numpy's exact arithmetic (i * step + start, last = stop), so thresholds are the
// same doubles pycocotools uses (0.75 must compare equal for AP75).
std::vector<double> numpy_linspace(double start, double stop, int num);

// COCOeval.Params for iouType="bbox" (cocoeval.py Params.setDetParams); the defaults are COCO's.
struct CocoEvalParams {
  std::vector<double> iou_thresholds = numpy_linspace(0.5, 0.95, 10);
  std::vector<double> recall_thresholds = numpy_linspace(0.0, 1.0, 101);
  std::vector<int> max_dets = {1, 10, 100};  // strictly increasing, exactly 3 (summarize reads maxDets[0..2])
  std::vector<CocoAreaRange> area_ranges = {
      {"all", 0.0, 1e10}, {"small", 0.0, 1024.0}, {"medium", 1024.0, 9216.0}, {"large", 9216.0, 1e10}};
  int threads = 0;  // worker threads; 0 = every usable CPU
  // Throws em::UsageError naming the parameter.
  void validate() const;
};

// The 12 numbers in COCOeval.stats order.
inline constexpr std::array<const char*, 12> kCocoStatNames = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                               "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

struct CocoEvalResult {
  std::array<double, 12> stats{};  // -1 where no ground truth counts (as pycocotools)
  // The K axis: the ground truth's category ids, sorted (pycocotools p.catIds), and their names.
  std::vector<std::int64_t> category_ids;
  std::vector<std::string> category_names;
  std::vector<double> ap_per_category;    // IoU .50:.95, area "all", maxDets[2]; -1 for a category without gt
  std::vector<double> ap50_per_category;  // IoU .50, area "all", maxDets[2]; -1 for a category without gt
  // COCOeval.eval["precision"] [T][R][K][A][M] and eval["recall"] [T][K][A][M], row-major.
  std::size_t T = 0, R = 0, K = 0, A = 0, M = 0;
  std::vector<double> precision;
  std::vector<double> recall;
  std::size_t num_images = 0;          // images evaluated (unique ids of the ground truth)
  std::size_t num_ground_truth = 0;    // annotations of those images in the known categories
  std::size_t num_detections = 0;      // detections of known categories (before the per-image maxDets cut)

  double precision_at(std::size_t t, std::size_t r, std::size_t k, std::size_t a, std::size_t m) const {
    return precision[(((t * R + r) * K + k) * A + a) * M + m];
  }
  double recall_at(std::size_t t, std::size_t k, std::size_t a, std::size_t m) const {
    return recall[((t * K + k) * A + a) * M + m];
  }
};

// COCOeval(gt, gt.loadRes(results), "bbox"); evaluate(); accumulate(); summarize() — with the same numbers. The
// ground truth is an annotation file as data/coco_file.hpp reads it (a training split or em-metrics' --truth).
// Detections on an image id that the ground truth lacks are an error (pycocotools asserts); boxes and detections of a
// category it lacks are not evaluated (pycocotools filters them by catIds), the detections counted in a warning.
CocoEvalResult coco_evaluate(const data::CocoAnnotations& gt, const CocoResults& results, const CocoEvalParams& params = {});

// {"AP": .., "AP50": .., ..., "ARl": .., "per_class": {name: {"AP": .., "AP50": ..}}}. Names default to the ground
// truth's category names (result.category_names); pass one name per result.category_ids entry to override.
// A name used twice gets " (id N)" appended so no class is lost.
io::Json to_json(const CocoEvalResult& result, const std::vector<std::string>& category_names = {});

// The 12 lines COCOeval.summarize() prints (" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | ...").
std::string format_coco_summary(const CocoEvalResult& result, const CocoEvalParams& params = {});

// em-metrics --algo detection: load both files, evaluate with default parameters on `threads` workers (0 = every
// usable CPU), return to_json(result).
io::Json evaluate_coco_files(const std::string& gt_path, const std::string& results_path, int threads = 0);

}  // namespace em::metrics
