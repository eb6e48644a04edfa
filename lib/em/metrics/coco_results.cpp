// The COCO results format (coco.py loadRes): [{"image_id", "category_id", "bbox", "score"}], extra fields ignored.
// Result files hold millions of boxes: a value's place is formatted only when something is wrong.
#include "em/metrics/coco.hpp"

#include <simdjson.h>

#include "em/core/error.hpp"
#include "em/data/coco_json.hpp"
#include "em/io/json_dom.hpp"

namespace em::metrics {

namespace {

namespace dom = simdjson::dom;
namespace coco_json = data::coco_json;

// Where a value sits ("dets.json: [12].bbox").
struct Loc {
  const std::string& what;
  std::size_t index;
  const char* field = nullptr;
  Loc at(const char* f) const { return Loc{what, index, f}; }
  std::string str() const {
    std::string s = fmt::format("{}: [{}]", what, index);
    if (field) s += fmt::format(".{}", field);
    return s;
  }
};

double number_at(dom::element e, const Loc& loc) {
  if (auto n = coco_json::as_number(e)) return *n;
  fail("{}: expected a number, got {}", loc.str(), io::json_type_name(e.type()));
}

std::int64_t id_at(dom::element e, const Loc& loc) {
  if (auto id = coco_json::as_id(e)) return *id;
  if (e.type() == dom::element_type::UINT64) fail("{}: id {} is too large", loc.str(), uint64_t(e));
  if (e.type() == dom::element_type::DOUBLE) fail("{}: expected an integer id, got {}", loc.str(), double(e));
  fail("{}: expected an integer id, got {}", loc.str(), io::json_type_name(e.type()));
}

std::array<double, 4> bbox_at(dom::element e, const Loc& loc) {
  dom::array arr;
  if (e.get(arr)) fail("{}: expected [x, y, w, h], got {}", loc.str(), io::json_type_name(e.type()));
  if (arr.size() != 4) fail("{}: expected [x, y, w, h] (4 numbers), got {} values", loc.str(), arr.size());
  std::array<double, 4> box{};
  std::size_t i = 0;
  for (dom::element v : arr) box[i++] = number_at(v, loc);
  return box;
}

CocoDetection read_detection(dom::element e, const Loc& loc) {
  dom::object obj;
  if (e.get(obj)) fail("{}: expected an object, got {}", loc.str(), io::json_type_name(e.type()));
  CocoDetection det;
  bool has_image = false, has_cat = false, has_bbox = false, has_score = false;
  for (auto field : obj) {
    if (field.key == "image_id") {
      det.image_id = id_at(field.value, loc.at("image_id"));
      has_image = true;
    } else if (field.key == "category_id") {
      det.category_id = id_at(field.value, loc.at("category_id"));
      has_cat = true;
    } else if (field.key == "bbox") {
      det.bbox = bbox_at(field.value, loc.at("bbox"));
      has_bbox = true;
    } else if (field.key == "score") {
      det.score = number_at(field.value, loc.at("score"));
      has_score = true;
    }
    // Everything else ("area", "segmentation", "iscrowd", "category_name", ...) is ignored: loadRes overwrites
    // area with w*h and iscrowd with 0 (coco.py:338-340).
  }
  if (!has_image) fail("{}: missing field \"image_id\"", loc.str());
  if (!has_cat) fail("{}: missing field \"category_id\"", loc.str());
  if (!has_bbox) fail("{}: missing field \"bbox\" ([x, y, w, h]); only box results are evaluated", loc.str());
  if (!has_score) fail("{}: missing field \"score\"", loc.str());
  return det;
}

CocoResults parse_results(const simdjson::padded_string& text, const std::string& what) {
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(text).get(root)) fail("{}: invalid JSON ({})", what, simdjson::error_message(err));
  io::check_json_rules(root, what);
  // coco.py loadRes: "results in not an array of objects".
  dom::array arr;
  if (root.get(arr))
    fail("{}: expected the COCO results format, a JSON array of {{\"image_id\", \"category_id\", \"bbox\", \"score\"}}, "
         "got {}",
         what, io::json_type_name(root.type()));
  CocoResults res;
  res.detections.reserve(arr.size());
  std::size_t index = 0;
  for (dom::element e : arr) res.detections.push_back(read_detection(e, Loc{what, index++}));
  return res;
}

}  // namespace

CocoResults parse_coco_results(std::string_view json_text, const std::string& what) {
  return parse_results(simdjson::padded_string(json_text), what);
}

CocoResults load_coco_results(const std::string& path) { return parse_results(coco_json::read_padded(path), path); }

}  // namespace em::metrics
