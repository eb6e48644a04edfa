// The detection dataset layout of SPEC §2: DIR/{train,validation[,test]}/_annotations.coco.json (COCO object
// detection) with the images beside it. One reader for training, em-eval and em-validate; it never stops at the first
// problem but lists each with the JSON path of the offending element ("annotations[12].bbox: ...").
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "em/data/validate.hpp"

namespace em::data {

inline constexpr const char* kCocoAnnotationFile = "_annotations.coco.json";

struct CocoBox {
  int64_t id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // [x, y, w, h] in pixels, as in the file
  double area = 0;               // the file's "area" (COCOeval bins small/medium/large by it); w*h when absent
  bool iscrowd = false;          // crowd regions: never a training target, handled as crowd by COCO evaluation
  size_t index = 0;              // position in "annotations", for messages
};

struct CocoImageRecord {
  int64_t id = 0;
  std::string file_name;  // as in the file, relative to the split folder
  std::string path;       // split folder / file_name
  int width = 0, height = 0;  // as declared; 0 when absent or invalid (then the decoded size is used)
  size_t index = 0;           // position in "images"
  std::vector<CocoBox> boxes;  // its annotations, in file order
};

struct CocoCategoryRecord {
  int64_t id = 0;
  std::string name;
  std::string supercategory;
  size_t index = 0;  // position in "categories"
};

// One split as read from its annotation file. Entries with a schema error, a duplicate id or an unknown reference are
// listed in `problems` and left out of images/categories/boxes; the rest is usable.
struct CocoSplit {
  std::string name;             // "train"
  std::string dir;              // DIR/train
  std::string annotation_path;  // DIR/train/_annotations.coco.json
  bool exists = false;          // the split folder exists
  std::vector<CocoImageRecord> images;         // in file order
  std::vector<CocoCategoryRecord> categories;  // sorted by id: the label order
  size_t num_annotations = 0;                  // well-formed annotations kept (on `images`)
  // The file cannot be used as it is: invalid JSON, schema errors, duplicate ids, unknown image_id/category_id,
  // duplicate category names. Training and em-eval refuse such a split; em-validate lists them all.
  std::vector<Problem> problems;
  // Boxes that are wrong but repairable: degenerate (w or h <= 0, not finite) or outside the declared image; image
  // sizes missing. em-validate reports them as problems; training drops/clips the boxes with a warning.
  std::vector<Problem> repairable;
  std::vector<Problem> warnings;  // worth knowing: missing "area", a category without boxes, a file listed twice

  bool ok() const { return problems.empty(); }
  // Throws em::Error listing the first problems (and how many more) with a pointer to em-validate.
  void require_ok() const;
};

// Reads DIR/split/_annotations.coco.json. Problems of the content are listed, never thrown; a missing split folder
// or annotation file is a problem too (exists tells which).
CocoSplit read_coco_split(const std::string& dir, const std::string& split);
// The same on text already in memory (`annotation_path` names it in messages; images resolve against `split_dir`).
CocoSplit parse_coco_split(const std::string& json_text, const std::string& annotation_path,
                           const std::string& split_dir, const std::string& split);

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
