#include "em/data/coco_file.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/coco_json.hpp"
#include "em/io/file.hpp"
#include "em/io/json_dom.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace dom = simdjson::dom;
using coco_json::as_id;
using coco_json::as_number;
using coco_json::element_text;

namespace {

// Boxes more than this far outside the declared image are reported (float noise of exporters is not).
constexpr double kOutsideTolerance = 0.5;

std::string fmt_num(double v) { return fmt::format("{:g}", v); }

std::string box_text(const std::array<double, 4>& b) {
  return fmt::format("[{}, {}, {}, {}]", fmt_num(b[0]), fmt_num(b[1]), fmt_num(b[2]), fmt_num(b[3]));
}

// One pass over a file: what is wrong (each prefixed with the JSON path of the element) and what the three lists
// need to know of each other.
struct Reader {
  Reader(CocoSplit& s, CocoRules rules_) : split(s), rules(rules_) {}
  CocoSplit& split;
  CocoRules rules;

  bool dataset() const { return rules == CocoRules::dataset; }
  // Dataset rules: listed; pycocotools' rules: thrown at once.
  void problem(const std::string& where, const std::string& reason) {
    std::string text = where.empty() ? reason : where + ": " + reason;
    if (!dataset()) fail_at(split.annotation_path, "{}", text);
    split.problems.push_back({split.annotation_path, std::move(text)});
  }
  void repairable(const std::string& where, const std::string& reason) {
    split.repairable.push_back({split.annotation_path, where + ": " + reason});
  }
  void warning(const std::string& where, const std::string& reason) {
    split.warnings.push_back({split.annotation_path, where.empty() ? reason : where + ": " + reason});
  }

  bool images_ok = false, categories_ok = false;        // the list is an array
  std::unordered_map<int64_t, size_t> image_at;         // id -> position in split.images
  std::unordered_map<int64_t, size_t> image_json;       // id -> index in "images"
  std::unordered_map<int64_t, size_t> category_json;    // id -> index in "categories"
  std::unordered_map<int64_t, size_t> category_at;      // id -> position in split.categories
  std::unordered_map<int64_t, size_t> annotation_json;  // id -> index in "annotations"
  std::map<std::string, size_t> file_seen;              // file_name -> index in "images"
  std::map<std::string, size_t> name_seen;              // name -> index in "categories"
  std::map<int64_t, int64_t> boxes_per_category;        // non-crowd boxes kept
  size_t missing_area = 0;
};

// Reads the integer id at obj[key]; reports a missing or non-integer one.
std::optional<int64_t> read_id_field(dom::object obj, const char* key, const std::string& where, Reader& r) {
  dom::element e;
  if (obj[key].get(e)) {
    r.problem(where, fmt::format("missing field \"{}\"", key));
    return std::nullopt;
  }
  auto id = as_id(e);
  if (!id) r.problem(where + "." + key, fmt::format("expected an integer id, got {}", element_text(e)));
  return id;
}

// root[key] as an array; reports a missing or non-array one.
bool top_array(dom::object root, const char* key, Reader& r, dom::array& out) {
  dom::element e;
  if (root[key].get(e)) {
    r.problem("", fmt::format("missing field \"{}\" (a COCO detection file has images, annotations and categories; "
                              "use [] for none)",
                              key));
    return false;
  }
  if (e.get(out)) {
    r.problem("", fmt::format("{}: expected an array, got {}", key, io::json_type_name(e.type())));
    return false;
  }
  return true;
}

// fn(obj, index, where) for every entry of root[key] ("images[3]"); an entry that is not an object is reported.
// False when root[key] is missing or not an array.
template <typename Fn>
bool for_each_entry(dom::object root, const char* key, Reader& r, Fn&& fn) {
  dom::array list;
  if (!top_array(root, key, r, list)) return false;
  size_t index = 0;
  for (dom::element e : list) {
    const size_t i = index++;
    const std::string where = fmt::format("{}[{}]", key, i);
    dom::object obj;
    if (e.get(obj))
      r.problem(where, fmt::format("expected an object, got {}", io::json_type_name(e.type())));
    else
      fn(obj, i, where);
  }
  return true;
}

// obj[key] as a string: required and non-empty by the dataset's rules ("missing field", "expected WHAT, got 5"),
// optional by pycocotools' (then a string of any type but `string_by_both`'s is read as absent). Returns whether the
// entry is usable; `out` is left empty where the field is absent.
bool read_text_field(dom::object obj, const char* key, const char* what, bool string_by_both, const std::string& where,
                     Reader& r, std::optional<std::string>& out) {
  dom::element e;
  std::string_view text;
  if (obj[key].get(e)) {
    if (r.dataset()) r.problem(where, fmt::format("missing field \"{}\"", key));
    return !r.dataset();
  }
  if (e.get(text) || (text.empty() && r.dataset())) {
    if (r.dataset() || string_by_both)
      r.problem(where + "." + key, fmt::format("expected {}, got {}", what, element_text(e)));
    return !r.dataset();
  }
  out = std::string(text);
  return true;
}

// ============================================================================================ images

// "width" and "height": missing is repairable (the decoded size is used), invalid a problem; pycocotools reads
// neither (a size it cannot use is left 0).
bool read_image_size(dom::object obj, const std::string& where, Reader& r, CocoImageRecord& img) {
  bool ok = true;
  for (const char* key : {"width", "height"}) {
    dom::element v;
    int& target = std::string(key) == "width" ? img.width : img.height;
    if (obj[key].get(v)) {
      if (r.dataset())
        r.repairable(where, fmt::format("missing field \"{}\" (COCO requires width and height; the decoded size is "
                                        "used)",
                                        key));
      continue;
    }
    auto n = as_id(v);
    if (!n || *n <= 0 || *n > std::numeric_limits<int>::max()) {
      if (r.dataset()) r.problem(where + "." + key, fmt::format("expected a positive integer, got {}", element_text(v)));
      ok = !r.dataset() && ok;
      continue;
    }
    target = static_cast<int>(*n);
  }
  return ok;
}

void read_image(dom::object obj, size_t index, const std::string& where, Reader& r) {
  CocoImageRecord img;
  img.index = index;
  auto id = read_id_field(obj, "id", where, r);
  bool ok = id.has_value();
  std::optional<std::string> file_name;  // the image is read from it; pycocotools needs none
  ok = read_text_field(obj, "file_name", "a file name", false, where, r, file_name) && ok;
  img.file_name = file_name.value_or("");
  ok = read_image_size(obj, where, r, img) && ok;
  if (id) {
    auto [it, inserted] = r.image_json.emplace(*id, index);
    // pycocotools keeps one image per id: the first entry keeps the annotations of both.
    if (!inserted && r.dataset())
      r.problem(where + ".id", fmt::format("duplicate image id {} (also images[{}])", *id, it->second));
    ok = ok && inserted;
  }
  // The image is read from file_name: it must name a file inside the split folder (not /etc/passwd, ../x or a link
  // out of the dataset). Ground truth read for metrics alone (em-metrics) reads no image.
  if (ok && r.dataset() && !img.file_name.empty())
    if (const std::string outside = io::outside_reason(r.split.dir, img.file_name); !outside.empty()) {
      r.problem(where + ".file_name", outside);
      ok = false;
    }
  if (!ok) return;
  img.id = *id;
  img.path = (fs::path(r.split.dir) / img.file_name).string();
  auto [fit, fresh] = r.file_seen.emplace(img.file_name, index);
  if (!fresh && r.dataset())
    r.warning(where + ".file_name", fmt::format("\"{}\" is also images[{}]", img.file_name, fit->second));
  r.image_at.emplace(img.id, r.split.images.size());
  r.split.images.push_back(std::move(img));
}

void read_images(dom::object root, Reader& r) {
  r.images_ok = for_each_entry(root, "images", r, [&](dom::object obj, size_t index, const std::string& where) {
    read_image(obj, index, where, r);
  });
}

// ============================================================================================ categories

// A repeated id: a problem by the dataset's rules; pycocotools' dict keeps the last name of an id.
bool unique_category_id(int64_t id, const std::string& where, size_t index, Reader& r, const std::string& name) {
  auto [it, inserted] = r.category_json.emplace(id, index);
  if (inserted) return true;
  if (r.dataset())
    r.problem(where + ".id", fmt::format("duplicate category id {} (also categories[{}])", id, it->second));
  else
    r.split.categories[r.category_at.at(id)].name = name;
  return false;
}

void read_category(dom::object obj, size_t index, const std::string& where, Reader& r) {
  auto id = read_id_field(obj, "id", where, r);
  CocoCategoryRecord cat;
  cat.index = index;
  std::optional<std::string> name;  // pycocotools names a nameless category by its id
  const bool named = read_text_field(obj, "name", "a category name", true, where, r, name);
  cat.name = name ? *name : id ? std::to_string(*id) : "";
  dom::element se;
  std::string_view super;
  if (!obj["supercategory"].get(se) && !se.get(super)) cat.supercategory = std::string(super);
  if (!id || !unique_category_id(*id, where, index, r, cat.name) || !named) return;
  auto [it, fresh] = r.name_seen.emplace(cat.name, index);
  if (!fresh && r.dataset()) {
    r.problem(where + ".name", fmt::format("duplicate category name \"{}\" (also categories[{}]); labels must be "
                                           "distinct",
                                           cat.name, it->second));
    return;
  }
  cat.id = *id;
  r.category_at.emplace(cat.id, r.split.categories.size());
  r.split.categories.push_back(std::move(cat));
}

void read_categories(dom::object root, Reader& r) {
  r.categories_ok = for_each_entry(root, "categories", r, [&](dom::object obj, size_t index, const std::string& where) {
    read_category(obj, index, where, r);
  });
  std::sort(r.split.categories.begin(), r.split.categories.end(),
            [](const CocoCategoryRecord& a, const CocoCategoryRecord& b) { return a.id < b.id; });
}

// ============================================================================================ annotations

// "id" unique over the whole list (pycocotools' anns dict would evaluate one box twice and lose the other).
bool unique_annotation(int64_t id, const std::string& where, size_t index, Reader& r) {
  auto [it, inserted] = r.annotation_json.emplace(id, index);
  if (!inserted)
    r.problem(where + ".id", fmt::format("duplicate annotation id {} (also annotations[{}])", id, it->second));
  return inserted;
}

// "image_id" and "category_id" name entries that were read. Without a usable "images" (or "categories") list every
// reference is unknown: reported once, there. pycocotools never evaluates annotations of images it lacks, and
// filters unknown categories when it evaluates.
bool known_references(std::optional<int64_t> image_id, std::optional<int64_t> category_id, const std::string& where,
                      Reader& r) {
  if (!r.dataset()) return image_id && r.image_at.count(*image_id);
  bool ok = true;
  if (image_id && !r.images_ok) {
    ok = false;
  } else if (image_id && !r.image_json.count(*image_id)) {
    r.problem(where + ".image_id", fmt::format("{} is not the id of an entry of \"images\"", *image_id));
    ok = false;
  } else if (image_id && !r.image_at.count(*image_id)) {
    ok = false;  // its image entry is broken (reported there)
  }
  if (category_id && !r.categories_ok) {
    ok = false;
  } else if (category_id && !r.category_json.count(*category_id)) {
    r.problem(where + ".category_id", fmt::format("{} is not the id of an entry of \"categories\"", *category_id));
    ok = false;
  } else if (category_id && !r.category_at.count(*category_id)) {
    ok = false;  // its category entry is broken (reported there)
  }
  return ok;
}

// "bbox": [x, y, w, h], 4 numbers.
bool read_bbox(dom::object obj, const std::string& where, Reader& r, CocoBox& box) {
  dom::element be;
  dom::array barr;
  if (obj["bbox"].get(be)) {
    r.problem(where, "missing field \"bbox\" ([x, y, w, h] in pixels)");
    return false;
  }
  if (!be.get(barr) && barr.size() == 4) {
    size_t k = 0;
    for (dom::element v : barr) {
      auto n = as_number(v);
      if (!n) break;
      box.bbox[k++] = *n;
    }
    if (k == 4) return true;
  }
  r.problem(where + ".bbox", fmt::format("expected [x, y, w, h] (4 numbers), got {}", element_text(be)));
  return false;
}

// "area": a number (>= 0 by the dataset's rules); absent, w*h (as torchvision's convert_to_coco_api; pycocotools
// would raise KeyError), with one warning for the file.
bool read_area(dom::object obj, const std::string& where, Reader& r, bool has_box, CocoBox& box) {
  dom::element ae;
  if (obj["area"].get(ae)) {
    box.area = has_box ? box.bbox[2] * box.bbox[3] : 0;
    ++r.missing_area;
    return true;
  }
  auto a = as_number(ae);
  if (!a || (r.dataset() && (!(*a >= 0) || !std::isfinite(*a)))) {
    r.problem(where + ".area",
              fmt::format("expected a number{}, got {}", r.dataset() ? " >= 0" : "", element_text(ae)));
    return false;
  }
  box.area = *a;
  return true;
}

// "iscrowd": a boolean or 0/1; pycocotools takes any number's truth value. Absent: 0.
bool read_iscrowd(dom::object obj, const std::string& where, Reader& r, CocoBox& box) {
  dom::element ce;
  if (obj["iscrowd"].get(ce)) return true;
  bool b = false;
  if (!ce.get(b)) {
    box.iscrowd = b;
    return true;
  }
  if (!r.dataset()) {
    if (auto n = as_number(ce)) {
      box.iscrowd = *n != 0;
      return true;
    }
  } else if (auto n = as_id(ce); n && (*n == 0 || *n == 1)) {
    box.iscrowd = *n == 1;
    return true;
  }
  r.problem(where + ".iscrowd", fmt::format("expected 0 or 1, got {}", element_text(ce)));
  return false;
}

// A kept box on its image; by the dataset's rules, degenerate boxes and boxes past the declared size are repairable.
void attach_box(CocoBox box, int64_t image_id, const std::string& where, Reader& r) {
  CocoImageRecord& img = r.split.images[r.image_at.at(image_id)];
  if (r.dataset()) {
    if (degenerate_box(box.bbox)) {
      r.repairable(where + ".bbox", fmt::format("degenerate box {} (w and h must be > 0); training drops it",
                                                box_text(box.bbox)));
    } else if (img.width > 0 && img.height > 0) {
      std::string outside = box_outside_reason(box.bbox, img.width, img.height);
      if (!outside.empty()) r.repairable(where + ".bbox", outside + fmt::format(" (image id {})", img.id));
    }
  }
  if (!box.iscrowd) r.boxes_per_category[box.category_id] += 1;
  img.boxes.push_back(box);
  ++r.split.num_annotations;
}

void read_annotation(dom::object obj, size_t index, const std::string& where, Reader& r) {
  CocoBox box;
  box.index = index;
  auto id = read_id_field(obj, "id", where, r);
  auto image_id = read_id_field(obj, "image_id", where, r);
  auto category_id = read_id_field(obj, "category_id", where, r);
  bool ok = id && image_id && category_id;
  if (id) ok = unique_annotation(*id, where, index, r) && ok;
  ok = known_references(image_id, category_id, where, r) && ok;
  const bool has_box = read_bbox(obj, where, r, box);
  ok = read_area(obj, where, r, has_box, box) && has_box && ok;
  ok = read_iscrowd(obj, where, r, box) && ok;
  if (!ok) return;
  box.id = *id;
  box.category_id = *category_id;
  attach_box(box, *image_id, where, r);
}

void read_annotations(dom::object root, Reader& r) {
  dom::element present;
  const bool absent_ok = !r.dataset() && root["annotations"].get(present);  // pycocotools: a file of no annotations
  if (!absent_ok)
    for_each_entry(root, "annotations", r, [&](dom::object obj, size_t index, const std::string& where) {
      read_annotation(obj, index, where, r);
    });
  CocoSplit& split = r.split;
  if (r.missing_area > 0)
    r.warning("annotations", fmt::format("{} annotation(s) have no \"area\"; w*h is used (COCO evaluation bins "
                                         "small/medium/large by it)",
                                         r.missing_area));
  if (!r.dataset() || split.name != "train") return;
  for (const auto& c : split.categories)
    if (!r.boxes_per_category.count(c.id))
      r.warning(fmt::format("categories[{}]", c.index),
                fmt::format("category {} \"{}\" has no boxes in {} (a label the model never learns{})", c.id, c.name,
                            split.name, c.id == 0 ? "; Roboflow exports put a placeholder here" : ""));
}

// ============================================================================================ the file

CocoSplit parse_coco(const simdjson::padded_string& text, const std::string& annotation_path,
                     const std::string& split_dir, const std::string& split_name, CocoRules rules) {
  CocoSplit split;
  split.name = split_name;
  split.dir = split_dir;
  split.annotation_path = annotation_path;
  split.exists = true;
  Reader r{split, rules};
  dom::parser parser;
  dom::element root_element;
  if (auto err = parser.parse(text).get(root_element)) {
    r.problem("", fmt::format("invalid JSON ({})", simdjson::error_message(err)));
    return split;
  }
  try {
    io::check_json_rules(root_element, annotation_path);
  } catch (const Error& e) {
    r.problem("", e.reason());
    return split;
  }
  dom::object root;
  if (root_element.get(root)) {
    r.problem("", fmt::format("expected a COCO object {{\"images\", \"annotations\", \"categories\"}}, got {}",
                              io::json_type_name(root_element.type())));
    return split;
  }
  read_images(root, r);
  read_categories(root, r);
  read_annotations(root, r);
  return split;
}

CocoAnnotations ground_truth_of(CocoSplit split) {
  for (const auto& w : split.warnings) log::warn("{}: {}", w.path, w.reason);
  return std::move(static_cast<CocoAnnotations&>(split));
}

// A split whose folder or annotation file is missing (`exists` says which).
CocoSplit missing_split(const fs::path& split_dir, const std::string& split_name, bool exists) {
  CocoSplit s;
  s.name = split_name;
  s.dir = split_dir.string();
  s.annotation_path = (split_dir / kCocoAnnotationFile).string();
  s.exists = exists;
  return s;
}

}  // namespace

bool degenerate_box(const std::array<double, 4>& b) {
  for (double v : b)
    if (!std::isfinite(v)) return true;
  return !(b[2] > 0) || !(b[3] > 0);
}

std::string box_outside_reason(const std::array<double, 4>& b, int width, int height) {
  const double x1 = b[0] + b[2], y1 = b[1] + b[3];
  if (b[0] >= width || b[1] >= height || x1 <= 0 || y1 <= 0)
    return fmt::format("box {} lies entirely outside the {}x{} image; training drops it", box_text(b), width, height);
  std::vector<std::string> what;
  if (b[0] < -kOutsideTolerance) what.push_back(fmt::format("x = {} < 0", fmt_num(b[0])));
  if (b[1] < -kOutsideTolerance) what.push_back(fmt::format("y = {} < 0", fmt_num(b[1])));
  if (x1 > width + kOutsideTolerance) what.push_back(fmt::format("x + w = {} > width {}", fmt_num(x1), width));
  if (y1 > height + kOutsideTolerance) what.push_back(fmt::format("y + h = {} > height {}", fmt_num(y1), height));
  if (what.empty()) return "";
  return fmt::format("box {} extends past the image ({}); training clips it", box_text(b), fmt::join(what, ", "));
}

void CocoSplit::require_ok() const {
  if (problems.empty()) return;
  std::string list;
  for (size_t i = 0; i < problems.size() && i < 5; ++i) list += "\n  " + problems[i].path + ": " + problems[i].reason;
  if (problems.size() > 5) list += fmt::format("\n  ... and {} more", problems.size() - 5);
  fail("{}: {} problem(s) in the annotations (em-validate --algo detection lists them all):{}", annotation_path,
       problems.size(), list);
}

CocoSplit parse_coco_split(const std::string& json_text, const std::string& annotation_path,
                           const std::string& split_dir, const std::string& split_name, CocoRules rules) {
  return parse_coco(simdjson::padded_string(json_text), annotation_path, split_dir, split_name, rules);
}

CocoSplit read_coco_split(const std::string& dir, const std::string& split_name) {
  const fs::path split_dir = fs::path(dir) / split_name;
  const std::string file = (split_dir / kCocoAnnotationFile).string();
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec)) {
    CocoSplit s = missing_split(split_dir, split_name, false);
    s.problems.push_back({s.dir, fmt::format("missing split folder (expected {})", file)});
    return s;
  }
  std::string text;
  try {
    text = io::read_file(file);
  } catch (const Error& e) {
    CocoSplit s = missing_split(split_dir, split_name, true);
    std::string msg = e.what(), prefix = file + ": ";
    if (msg.compare(0, prefix.size(), prefix) == 0) msg = msg.substr(prefix.size());
    s.problems.push_back({file, msg + fmt::format(" (the {} split's COCO annotations)", split_name)});
    return s;
  }
  return parse_coco_split(text, file, split_dir.string(), split_name);
}

CocoAnnotations read_coco_ground_truth(const std::string& path) {
  return ground_truth_of(parse_coco(coco_json::read_padded(path), path, "", "", CocoRules::pycocotools));
}

CocoAnnotations parse_coco_ground_truth(std::string_view json_text, const std::string& what) {
  return ground_truth_of(parse_coco(simdjson::padded_string(json_text), what, "", "", CocoRules::pycocotools));
}

}  // namespace em::data
