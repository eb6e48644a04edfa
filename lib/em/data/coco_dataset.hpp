// The detection dataset layout (docs/datasets.md): DIR/{train,validation[,test]}/_annotations.coco.json (COCO object
// detection) with the images beside it, read by data/coco_file.hpp, for training, em-eval and em-validate.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/data/coco_file.hpp"
#include "em/data/validate.hpp"

namespace em::data {

// A detection dataset for training: train (+ validation when present or required, + test when present) read and
// checked; labels are train's categories in id order (contiguous 0..n-1, whatever the ids are: sparse, from 0 with
// Roboflow's placeholder, ...). Validation/test categories must be train's (same id, same name).
struct DetectionDataset {
  std::string dir;
  std::vector<CocoCategoryRecord> categories;  // train's, sorted by id; label i = categories[i]
  CocoSplit train, validation, test;

  std::vector<std::string> labels() const;
  // Label index of a category id; -1 when unknown.
  int64_t label_of(int64_t category_id) const;

  // Throws em::Error for a missing dataset folder, train split (or validation when required) and for any split's
  // problems; warns (once, with counts and the first JSON paths) about repairable boxes, which training drops/clips.
  static DetectionDataset load(const std::string& dir, bool require_validation = true);
};

// em-validate --algo detection: reads the splits, decodes every listed image on `threads` threads, and reports every
// problem with its JSON path: schema errors, missing or undecodable images, unknown image_id/category_id, duplicate
// ids, degenerate or out-of-image boxes, width/height that disagree with the file, validation categories unknown to
// train. Summary: categories and their label order, images/boxes/crowd boxes per split, boxes per class, COCO box-size
// bins (small/medium/large by the "area" field, as COCOeval) and a histogram of sqrt(w*h).
ValidationReport validate_detection(const std::string& dir, int threads = 0);

}  // namespace em::data
