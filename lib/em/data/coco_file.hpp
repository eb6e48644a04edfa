// The one reader of COCO object-detection annotation files (images, categories, annotations), for training, em-eval,
// em-validate and em-metrics' ground truth, into one set of types; every problem names the JSON path of the offending
// element ("annotations[12].bbox: ..."). Two rule sets: the dataset's (all problems listed) and pycocotools'.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "em/data/validate.hpp"

namespace em::data {

inline constexpr const char* kCocoAnnotationFile = "_annotations.coco.json";

// One entry of "annotations".
struct CocoBox {
  int64_t id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // [x, y, w, h] in pixels, as in the file
  // The file's "area": COCO evaluation bins small/medium/large by it, not by w*h (they differ for polygons and in
  // some exports); w*h when absent.
  double area = 0;
  bool iscrowd = false;  // crowd regions: never a training target; in evaluation never missed, they absorb detections
  size_t index = 0;      // position in "annotations", for messages
};

// One entry of "images", with its annotations.
struct CocoImageRecord {
  int64_t id = 0;
  std::string file_name;  // as in the file, relative to the split folder
  std::string path;       // split folder / file_name
  int width = 0, height = 0;   // as declared; 0 when absent or invalid (then the decoded size is used)
  size_t index = 0;            // position in "images"
  std::vector<CocoBox> boxes;  // its annotations, in file order
};

// One entry of "categories".
struct CocoCategoryRecord {
  int64_t id = 0;
  std::string name;
  std::string supercategory;
  size_t index = 0;  // position in "categories"
};

// What an annotation file holds: the ground truth of COCO evaluation and the boxes of training.
struct CocoAnnotations {
  std::vector<CocoImageRecord> images;         // in file order, ids unique
  std::vector<CocoCategoryRecord> categories;  // sorted by id (the label order), ids unique
  size_t num_annotations = 0;                  // annotations kept (on `images`)
};

// The rules an annotation file is read by.
enum class CocoRules {
  // Training, em-eval, em-validate: every problem listed with its JSON path; entries with a schema error, a duplicate
  // id or an unknown reference are left out, the rest is usable.
  dataset,
  // em-metrics' ground truth: what pycocotools' COCO() accepts (no file names or sizes needed, names default to the
  // id, a repeated category id takes the last name, annotations of unknown images are never evaluated, "annotations"
  // may be absent), plus unique annotation ids; the first problem throws em::Error.
  pycocotools,
};

// One split as read from its annotation file.
struct CocoSplit : CocoAnnotations {
  std::string name;             // "train"
  std::string dir;              // DIR/train
  std::string annotation_path;  // DIR/train/_annotations.coco.json
  bool exists = false;          // the split folder exists
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

// Reads DIR/split/_annotations.coco.json by the dataset's rules. Problems of the content are listed, never thrown; a
// missing split folder or annotation file is a problem too (exists tells which).
CocoSplit read_coco_split(const std::string& dir, const std::string& split);
// The same on text already in memory (`annotation_path` names it in messages; images resolve against `split_dir`).
CocoSplit parse_coco_split(const std::string& json_text, const std::string& annotation_path,
                           const std::string& split_dir, const std::string& split,
                           CocoRules rules = CocoRules::dataset);

// em-metrics' ground truth: any COCO file ("-" = stdin) by pycocotools' rules; throws em::Error ("PATH: JSON.PATH:
// reason") at the first problem and logs the warnings (annotations without "area").
CocoAnnotations read_coco_ground_truth(const std::string& path);
// The same on text in memory; `what` names it in messages.
CocoAnnotations parse_coco_ground_truth(std::string_view json_text, const std::string& what);

// The box checks shared by the reader (declared sizes) and em-validate (decoded sizes where none is declared).
bool degenerate_box(const std::array<double, 4>& bbox);  // w or h <= 0, or a value not finite
// "" when the box is inside the width x height image (up to half a pixel), else why not and what training does.
std::string box_outside_reason(const std::array<double, 4>& bbox, int width, int height);

}  // namespace em::data
