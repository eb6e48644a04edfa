#include "em/data/coco_dataset.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/file.hpp"
#include "em/io/json_dom.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/ranges.h>
#include <simdjson.h>

namespace em::data {
namespace fs = std::filesystem;
namespace dom = simdjson::dom;

namespace {

// Boxes more than this far outside the declared image are reported (float noise of exporters is not).
constexpr double kOutsideTolerance = 0.5;

std::string element_text(dom::element e) {
  std::string s = simdjson::minify(e);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::optional<double> as_number(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64: return static_cast<double>(int64_t(e));
    case dom::element_type::UINT64: return static_cast<double>(uint64_t(e));
    case dom::element_type::DOUBLE: return double(e);
    default: return std::nullopt;
  }
}

// COCO ids are integers; 3.0 is read as 3 (Python's dict treats them as one key, as pycocotools does).
std::optional<int64_t> as_id(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64: return int64_t(e);
    case dom::element_type::UINT64: {
      uint64_t v = uint64_t(e);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    case dom::element_type::DOUBLE: {
      double v = double(e);
      if (std::floor(v) != v || std::fabs(v) > 9.0e15) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default: return std::nullopt;
  }
}

std::string fmt_num(double v) { return fmt::format("{:g}", v); }

std::string box_text(const std::array<double, 4>& b) {
  return fmt::format("[{}, {}, {}, {}]", fmt_num(b[0]), fmt_num(b[1]), fmt_num(b[2]), fmt_num(b[3]));
}

// Collects what is wrong, each prefixed with the JSON path of the element.
struct Reporter {
  CocoSplit& split;
  void problem(const std::string& where, const std::string& reason) {
    split.problems.push_back({split.annotation_path, where + ": " + reason});
  }
  void repairable(const std::string& where, const std::string& reason) {
    split.repairable.push_back({split.annotation_path, where + ": " + reason});
  }
  void warning(const std::string& where, const std::string& reason) {
    split.warnings.push_back({split.annotation_path, where.empty() ? reason : where + ": " + reason});
  }
};

// Reads the integer id at obj[key]; reports a missing or non-integer one.
std::optional<int64_t> read_id_field(dom::object obj, const char* key, const std::string& where, Reporter& r) {
  dom::element e;
  if (obj[key].get(e)) {
    r.problem(where, fmt::format("missing field \"{}\"", key));
    return std::nullopt;
  }
  auto id = as_id(e);
  if (!id) r.problem(where + "." + key, fmt::format("expected an integer id, got {}", element_text(e)));
  return id;
}

// The box checks shared by the reader (declared sizes) and em-validate (decoded sizes where none is declared).
// Returns "" when the box is inside the image.
std::string outside_reason(const std::array<double, 4>& b, int width, int height) {
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

bool degenerate(const std::array<double, 4>& b) {
  for (double v : b)
    if (!std::isfinite(v)) return true;
  return !(b[2] > 0) || !(b[3] > 0);
}

}  // namespace

void CocoSplit::require_ok() const {
  if (problems.empty()) return;
  std::string list;
  for (size_t i = 0; i < problems.size() && i < 5; ++i) list += "\n  " + problems[i].path + ": " + problems[i].reason;
  if (problems.size() > 5) list += fmt::format("\n  ... and {} more", problems.size() - 5);
  fail("{}: {} problem(s) in the annotations (em-validate --algo detection lists them all):{}", annotation_path,
       problems.size(), list);
}

CocoSplit parse_coco_split(const std::string& json_text, const std::string& annotation_path,
                           const std::string& split_dir, const std::string& split_name) {
  CocoSplit split;
  split.name = split_name;
  split.dir = split_dir;
  split.annotation_path = annotation_path;
  split.exists = true;
  Reporter r{split};

  dom::parser parser;
  simdjson::padded_string text(json_text);
  dom::element root_element;
  if (auto err = parser.parse(text).get(root_element)) {
    split.problems.push_back({annotation_path, fmt::format("invalid JSON ({})", simdjson::error_message(err))});
    return split;
  }
  dom::object root;
  if (root_element.get(root)) {
    split.problems.push_back({annotation_path, fmt::format("expected a COCO object {{\"images\", \"annotations\", "
                                                           "\"categories\"}}, got {}",
                                                           io::json_type_name(root_element.type()))});
    return split;
  }
  auto top_array = [&](const char* key, dom::array& out) {
    dom::element e;
    if (root[key].get(e)) {
      split.problems.push_back(
          {annotation_path, fmt::format("missing field \"{}\" (a COCO detection file has images, annotations and "
                                        "categories; use [] for none)",
                                        key)});
      return false;
    }
    if (e.get(out)) {
      split.problems.push_back({annotation_path, fmt::format("{}: expected an array, got {}", key, io::json_type_name(e.type()))});
      return false;
    }
    return true;
  };

  // ---- images
  std::unordered_map<int64_t, size_t> image_at;   // id -> position in split.images
  std::unordered_map<int64_t, size_t> image_json;  // id -> index in "images"
  std::map<std::string, size_t> file_seen;
  dom::array images;
  const bool images_ok = top_array("images", images);
  if (images_ok) {
    size_t i = 0;
    for (dom::element e : images) {
      const size_t index = i++;
      const std::string where = fmt::format("images[{}]", index);
      dom::object obj;
      if (e.get(obj)) {
        r.problem(where, fmt::format("expected an object, got {}", io::json_type_name(e.type())));
        continue;
      }
      CocoImageRecord img;
      img.index = index;
      bool ok = true;
      auto id = read_id_field(obj, "id", where, r);
      if (!id) ok = false;
      dom::element fe;
      std::string_view file_name;
      if (obj["file_name"].get(fe)) {
        r.problem(where, "missing field \"file_name\"");
        ok = false;
      } else if (fe.get(file_name) || file_name.empty()) {
        r.problem(where + ".file_name", fmt::format("expected a file name, got {}", element_text(fe)));
        ok = false;
      }
      for (const char* key : {"width", "height"}) {
        dom::element v;
        int* target = std::string(key) == "width" ? &img.width : &img.height;
        if (obj[key].get(v)) {
          r.repairable(where, fmt::format("missing field \"{}\" (COCO requires width and height; the decoded size is "
                                          "used)",
                                          key));
          continue;
        }
        auto n = as_id(v);
        if (!n || *n <= 0 || *n > std::numeric_limits<int>::max()) {
          r.problem(where + "." + key, fmt::format("expected a positive integer, got {}", element_text(v)));
          ok = false;
          continue;
        }
        *target = static_cast<int>(*n);
      }
      if (id) {
        auto [it, inserted] = image_json.emplace(*id, index);
        if (!inserted) {
          r.problem(where + ".id", fmt::format("duplicate image id {} (also images[{}])", *id, it->second));
          ok = false;
        }
      }
      if (!ok) continue;
      img.id = *id;
      img.file_name = std::string(file_name);
      img.path = (fs::path(split_dir) / img.file_name).string();
      auto [fit, fresh] = file_seen.emplace(img.file_name, index);
      if (!fresh)
        r.warning(where + ".file_name", fmt::format("\"{}\" is also images[{}]", img.file_name, fit->second));
      image_at.emplace(img.id, split.images.size());
      split.images.push_back(std::move(img));
    }
  }

  // ---- categories
  std::unordered_map<int64_t, size_t> category_json;  // id -> index in "categories"
  std::map<std::string, size_t> name_seen;
  dom::array categories;
  const bool categories_ok = top_array("categories", categories);
  if (categories_ok) {
    size_t i = 0;
    for (dom::element e : categories) {
      const size_t index = i++;
      const std::string where = fmt::format("categories[{}]", index);
      dom::object obj;
      if (e.get(obj)) {
        r.problem(where, fmt::format("expected an object, got {}", io::json_type_name(e.type())));
        continue;
      }
      CocoCategoryRecord cat;
      cat.index = index;
      bool ok = true;
      auto id = read_id_field(obj, "id", where, r);
      if (!id) ok = false;
      dom::element ne;
      std::string_view name;
      if (obj["name"].get(ne)) {
        r.problem(where, "missing field \"name\"");
        ok = false;
      } else if (ne.get(name) || name.empty()) {
        r.problem(where + ".name", fmt::format("expected a category name, got {}", element_text(ne)));
        ok = false;
      }
      dom::element se;
      std::string_view super;
      if (!obj["supercategory"].get(se) && !se.get(super)) cat.supercategory = std::string(super);
      if (id) {
        auto [it, inserted] = category_json.emplace(*id, index);
        if (!inserted) {
          r.problem(where + ".id", fmt::format("duplicate category id {} (also categories[{}])", *id, it->second));
          ok = false;
        }
      }
      if (ok) {
        auto [it, inserted] = name_seen.emplace(std::string(name), index);
        if (!inserted) {
          r.problem(where + ".name", fmt::format("duplicate category name \"{}\" (also categories[{}]); labels must be "
                                                 "distinct",
                                                 name, it->second));
          ok = false;
        }
      }
      if (!ok) continue;
      cat.id = *id;
      cat.name = std::string(name);
      split.categories.push_back(std::move(cat));
    }
    std::sort(split.categories.begin(), split.categories.end(),
              [](const CocoCategoryRecord& a, const CocoCategoryRecord& b) { return a.id < b.id; });
  }
  std::set<int64_t> category_ids;
  for (const auto& c : split.categories) category_ids.insert(c.id);

  // ---- annotations
  std::unordered_map<int64_t, size_t> annotation_json;
  std::map<int64_t, int64_t> boxes_per_category;
  size_t missing_area = 0;
  dom::array annotations;
  if (top_array("annotations", annotations)) {
    size_t i = 0;
    for (dom::element e : annotations) {
      const size_t index = i++;
      const std::string where = fmt::format("annotations[{}]", index);
      dom::object obj;
      if (e.get(obj)) {
        r.problem(where, fmt::format("expected an object, got {}", io::json_type_name(e.type())));
        continue;
      }
      CocoBox box;
      box.index = index;
      bool ok = true;
      auto id = read_id_field(obj, "id", where, r);
      auto image_id = read_id_field(obj, "image_id", where, r);
      auto category_id = read_id_field(obj, "category_id", where, r);
      ok = id && image_id && category_id;
      if (id) {
        auto [it, inserted] = annotation_json.emplace(*id, index);
        if (!inserted) {
          r.problem(where + ".id", fmt::format("duplicate annotation id {} (also annotations[{}])", *id, it->second));
          ok = false;
        }
      }
      // Without a usable "images" (or "categories") list, every reference is unknown: reported once, above.
      if (image_id && !images_ok) {
        ok = false;
      } else if (image_id && !image_json.count(*image_id)) {
        r.problem(where + ".image_id", fmt::format("{} is not the id of an entry of \"images\"", *image_id));
        ok = false;
      } else if (image_id && !image_at.count(*image_id)) {
        ok = false;  // its image entry is broken (reported there)
      }
      if (category_id && !categories_ok) {
        ok = false;
      } else if (category_id && !category_json.count(*category_id)) {
        r.problem(where + ".category_id", fmt::format("{} is not the id of an entry of \"categories\"", *category_id));
        ok = false;
      } else if (category_id && !category_ids.count(*category_id)) {
        ok = false;
      }
      dom::element be;
      dom::array barr;
      bool has_box = false;
      if (obj["bbox"].get(be)) {
        r.problem(where, "missing field \"bbox\" ([x, y, w, h] in pixels)");
        ok = false;
      } else if (be.get(barr) || barr.size() != 4) {
        r.problem(where + ".bbox", fmt::format("expected [x, y, w, h] (4 numbers), got {}", element_text(be)));
        ok = false;
      } else {
        size_t k = 0;
        has_box = true;
        for (dom::element v : barr) {
          auto n = as_number(v);
          if (!n) {
            r.problem(where + ".bbox", fmt::format("expected [x, y, w, h] (4 numbers), got {}", element_text(be)));
            ok = has_box = false;
            break;
          }
          box.bbox[k++] = *n;
        }
      }
      dom::element ae;
      if (obj["area"].get(ae)) {
        box.area = has_box ? box.bbox[2] * box.bbox[3] : 0;
        ++missing_area;
      } else if (auto a = as_number(ae); !a || !(*a >= 0) || !std::isfinite(*a)) {
        r.problem(where + ".area", fmt::format("expected a number >= 0, got {}", element_text(ae)));
        ok = false;
      } else {
        box.area = *a;
      }
      dom::element ce;
      if (!obj["iscrowd"].get(ce)) {
        bool b = false;
        auto n = as_id(ce);
        if (!ce.get(b)) {
          box.iscrowd = b;
        } else if (n && (*n == 0 || *n == 1)) {
          box.iscrowd = *n == 1;
        } else {
          r.problem(where + ".iscrowd", fmt::format("expected 0 or 1, got {}", element_text(ce)));
          ok = false;
        }
      }
      if (!ok) continue;
      box.id = *id;
      box.category_id = *category_id;
      CocoImageRecord& img = split.images[image_at.at(*image_id)];
      if (degenerate(box.bbox)) {
        r.repairable(where + ".bbox", fmt::format("degenerate box {} (w and h must be > 0); training drops it",
                                                  box_text(box.bbox)));
      } else if (img.width > 0 && img.height > 0) {
        std::string outside = outside_reason(box.bbox, img.width, img.height);
        if (!outside.empty()) r.repairable(where + ".bbox", outside + fmt::format(" (image id {})", img.id));
      }
      if (!box.iscrowd) boxes_per_category[box.category_id] += 1;
      img.boxes.push_back(box);
      ++split.num_annotations;
    }
  }
  if (missing_area > 0)
    r.warning("annotations", fmt::format("{} annotation(s) have no \"area\"; w*h is used (COCO evaluation bins "
                                         "small/medium/large by it)",
                                         missing_area));
  for (const auto& c : split.categories)
    if (!boxes_per_category.count(c.id) && split.name == "train")
      r.warning(fmt::format("categories[{}]", c.index),
                fmt::format("category {} \"{}\" has no boxes in {} (a label the model never learns{})", c.id, c.name,
                            split.name, c.id == 0 ? "; Roboflow exports put a placeholder here" : ""));
  return split;
}

CocoSplit read_coco_split(const std::string& dir, const std::string& split_name) {
  const fs::path split_dir = fs::path(dir) / split_name;
  const fs::path file = split_dir / kCocoAnnotationFile;
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec)) {
    CocoSplit s;
    s.name = split_name;
    s.dir = split_dir.string();
    s.annotation_path = file.string();
    s.problems.push_back({s.dir, fmt::format("missing split folder (expected {})", file.string())});
    return s;
  }
  std::string text;
  try {
    text = io::read_file(file.string());
  } catch (const Error& e) {
    CocoSplit s;
    s.name = split_name;
    s.dir = split_dir.string();
    s.annotation_path = file.string();
    s.exists = true;
    std::string msg = e.what(), prefix = file.string() + ": ";
    if (msg.compare(0, prefix.size(), prefix) == 0) msg = msg.substr(prefix.size());
    s.problems.push_back({file.string(), msg + fmt::format(" (the {} split's COCO annotations)", split_name)});
    return s;
  }
  return parse_coco_split(text, file.string(), split_dir.string(), split_name);
}

// ============================================================================================ DetectionDataset

std::vector<std::string> DetectionDataset::labels() const {
  std::vector<std::string> out;
  for (const auto& c : categories) out.push_back(c.name);
  return out;
}

int64_t DetectionDataset::label_of(int64_t category_id) const {
  auto it = std::lower_bound(categories.begin(), categories.end(), category_id,
                             [](const CocoCategoryRecord& c, int64_t id) { return c.id < id; });
  return it != categories.end() && it->id == category_id ? it - categories.begin() : -1;
}

namespace {

// Validation/test categories must be train's: the model's labels are train's, and COCO evaluation pairs them by id.
std::vector<Problem> category_mismatches(const CocoSplit& train, const CocoSplit& other) {
  std::vector<Problem> out;
  std::map<int64_t, std::string> train_names;
  std::vector<int64_t> train_ids;
  for (const auto& c : train.categories) {
    train_names[c.id] = c.name;
    train_ids.push_back(c.id);
  }
  for (const auto& c : other.categories) {
    auto it = train_names.find(c.id);
    if (it == train_names.end())
      out.push_back({other.annotation_path,
                     fmt::format("categories[{}]: category {} \"{}\" is not a train category (train has ids {})",
                                 c.index, c.id, c.name, fmt::join(train_ids, ", "))});
    else if (it->second != c.name)
      out.push_back({other.annotation_path, fmt::format("categories[{}].name: category {} is \"{}\" here but \"{}\" in "
                                                        "train",
                                                        c.index, c.id, c.name, it->second)});
  }
  return out;
}

void warn_repairable(const CocoSplit& s) {
  if (s.repairable.empty()) return;
  std::string list;
  for (size_t i = 0; i < s.repairable.size() && i < 3; ++i) list += "\n  " + s.repairable[i].reason;
  log::warn("{}: {} box/image issue(s); degenerate boxes are dropped, boxes past the image clipped{}{}",
            s.annotation_path, s.repairable.size(), list,
            s.repairable.size() > 3 ? fmt::format("\n  ... (em-validate --algo detection lists all)") : "");
}

}  // namespace

DetectionDataset DetectionDataset::load(const std::string& dir, bool require_validation) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("{}: no such dataset folder (expected {}/train/{}, see docs/datasets.md)", dir, dir, kCocoAnnotationFile);
  DetectionDataset ds;
  ds.dir = dir;
  ds.train = read_coco_split(dir, "train");
  if (!ds.train.exists) fail("{}: {}", ds.train.problems.front().path, ds.train.problems.front().reason);
  ds.train.require_ok();
  if (ds.train.images.empty()) fail("{}: no images to train on (\"images\" is empty)", ds.train.annotation_path);
  if (ds.train.categories.empty()) fail("{}: no categories (\"categories\" is empty)", ds.train.annotation_path);
  ds.categories = ds.train.categories;
  warn_repairable(ds.train);
  for (CocoSplit* s : {&ds.validation, &ds.test}) {
    const std::string name = s == &ds.validation ? "validation" : "test";
    *s = read_coco_split(dir, name);
    if (!s->exists) {
      if (name == "validation" && require_validation)
        fail("{}: {} (the seed layout needs train and validation)", s->problems.front().path,
             s->problems.front().reason);
      *s = CocoSplit{};
      continue;
    }
    s->require_ok();
    auto mismatches = category_mismatches(ds.train, *s);
    if (!mismatches.empty()) fail("{}: {}", mismatches.front().path, mismatches.front().reason);
    warn_repairable(*s);
  }
  return ds;
}

// ============================================================================================ em-validate

ValidationReport validate_detection(const std::string& dir, int threads) {
  ValidationReport report = begin_report(
      "detection", dir, fmt::format("DIR/train/{} with the images beside it", kCocoAnnotationFile));
  if (!report.ok()) return report;
  std::vector<CocoSplit> splits;
  for (const char* name : {"train", "validation", "test"}) {
    CocoSplit s = read_coco_split(dir, name);
    if (!s.exists) {
      if (std::string(name) != "test") report.problems.push_back(s.problems.front());
      continue;
    }
    splits.push_back(std::move(s));
  }
  const CocoSplit* train = nullptr;
  for (const auto& s : splits)
    if (s.name == "train") train = &s;

  // Every listed image, decoded once (the same file listed in two splits is decoded twice: cheap and simple).
  std::vector<std::string> paths;
  std::vector<std::pair<size_t, size_t>> owner;  // (split, image) of each path
  for (size_t si = 0; si < splits.size(); ++si)
    for (size_t ii = 0; ii < splits[si].images.size(); ++ii) {
      paths.push_back(splits[si].images[ii].path);
      owner.emplace_back(si, ii);
    }
  std::vector<DecodedInfo> decoded = decode_all(paths, threads);
  std::vector<std::vector<DecodedInfo>> decoded_by_split(splits.size());
  for (size_t si = 0; si < splits.size(); ++si) decoded_by_split[si].resize(splits[si].images.size());
  for (size_t k = 0; k < paths.size(); ++k) decoded_by_split[owner[k].first][owner[k].second] = decoded[k];

  std::map<std::pair<int, int>, int64_t> sizes;
  std::map<std::string, int64_t> formats;
  io::Json split_summaries = io::Json::object();
  for (size_t si = 0; si < splits.size(); ++si) {
    CocoSplit& s = splits[si];
    for (auto& p : s.problems) report.problems.push_back(p);
    if (train && &s != train)
      for (auto& p : category_mismatches(*train, s)) report.problems.push_back(p);
    for (auto& p : s.repairable) report.problems.push_back(p);
    for (auto& p : s.warnings) report.warnings.push_back(p);
    if (s.images.empty() && s.problems.empty())
      report.problems.push_back({s.annotation_path, "images: no images in this split"});

    std::map<int64_t, std::string> names;
    for (const auto& c : s.categories) names[c.id] = c.name;
    io::Json per_class = io::Json::object();
    for (const auto& c : s.categories) per_class[c.name] = 0;
    int64_t boxes = 0, crowd = 0, without_boxes = 0, small = 0, medium = 0, large = 0;
    static const std::vector<std::pair<double, std::string>> bins = {
        {8, "<8"}, {16, "8-16"}, {32, "16-32"}, {64, "32-64"}, {128, "64-128"}, {256, "128-256"}, {512, "256-512"}};
    std::vector<int64_t> histogram(bins.size() + 1, 0);
    for (size_t ii = 0; ii < s.images.size(); ++ii) {
      const CocoImageRecord& img = s.images[ii];
      const DecodedInfo& d = decoded_by_split[si][ii];
      const std::string where = fmt::format("images[{}]", img.index);
      if (!d.error.empty()) {
        report.problems.push_back({img.path, fmt::format("{} (listed in {} as {}.file_name)", d.error,
                                                         s.annotation_path, where)});
      } else {
        sizes[{d.width, d.height}] += 1;
        formats[d.format] += 1;
        if (img.width > 0 && img.height > 0 && (img.width != d.width || img.height != d.height)) {
          report.problems.push_back(
              {s.annotation_path, fmt::format("{}: width x height {}x{} disagrees with the file {} ({}x{})", where,
                                              img.width, img.height, img.file_name, d.width, d.height)});
        } else if (img.width == 0 || img.height == 0) {
          // No declared size: check the boxes against the decoded one.
          for (const auto& b : img.boxes) {
            if (degenerate(b.bbox)) continue;
            std::string outside = outside_reason(b.bbox, d.width, d.height);
            if (!outside.empty())
              report.problems.push_back({s.annotation_path, fmt::format("annotations[{}].bbox: {} (image {})", b.index,
                                                                        outside, img.file_name)});
          }
        }
      }
      int64_t targets = 0;
      for (const auto& b : img.boxes) {
        if (b.iscrowd) {
          ++crowd;
          continue;
        }
        ++boxes;
        ++targets;
        per_class[names[b.category_id]] = per_class[names[b.category_id]].get<int64_t>() + 1;
        // COCOeval's area ranges: small < 32^2 <= medium < 96^2 <= large, on the "area" field.
        if (b.area < 32.0 * 32.0) ++small;
        else if (b.area < 96.0 * 96.0) ++medium;
        else ++large;
        const double side = std::sqrt(std::max(0.0, b.bbox[2] * b.bbox[3]));
        size_t k = 0;
        while (k < bins.size() && side >= bins[k].first) ++k;
        histogram[k] += 1;
      }
      if (targets == 0) ++without_boxes;
    }
    io::Json hist = io::Json::object();
    for (size_t k = 0; k < bins.size(); ++k) hist[bins[k].second] = histogram[k];
    hist[">=512"] = histogram.back();
    split_summaries[s.name] = {{"images", s.images.size()},
                               {"images_without_boxes", without_boxes},
                               {"boxes", boxes},
                               {"crowd_boxes", crowd},
                               {"boxes_per_class", per_class},
                               {"box_sizes", {{"small", small}, {"medium", medium}, {"large", large}}},
                               {"box_side_histogram", hist}};
  }

  io::Json& summary = report.summary;
  io::Json cats = io::Json::array();
  if (train)
    for (size_t i = 0; i < train->categories.size(); ++i)
      cats.push_back({{"id", train->categories[i].id}, {"name", train->categories[i].name}, {"label", i}});
  summary["categories"] = cats;
  summary["num_labels"] = cats.size();
  summary["splits"] = split_summaries;
  if (!sizes.empty()) {
    int min_w = sizes.begin()->first.first, max_w = min_w, min_h = sizes.begin()->first.second, max_h = min_h;
    for (const auto& [wh, n] : sizes) {
      min_w = std::min(min_w, wh.first), max_w = std::max(max_w, wh.first);
      min_h = std::min(min_h, wh.second), max_h = std::max(max_h, wh.second);
    }
    summary["image_size"] = {{"width", {{"min", min_w}, {"max", max_w}}},
                             {"height", {{"min", min_h}, {"max", max_h}}},
                             {"distinct_sizes", sizes.size()}};
    summary["formats"] = formats;
  }
  return report;
}

}  // namespace em::data
