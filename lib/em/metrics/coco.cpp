// COCO box evaluation, a line-by-line port of pycocotools (cocoapi PythonAPI/pycocotools/cocoeval.py and coco.py,
// ppwwyyxx/cocoapi@ac87f50 = pycocotools 2.0.11 = cocodataset/cocoapi@8c9bcc3 for everything used here; box IoU from
// common/maskApi.c bbIou). References below as "cocoeval.py:LINE" (cocodataset/cocoapi@8c9bcc3 numbering).
//
// Shape of the port: pycocotools evaluates per (category, area range, image) with Python dicts; here ground truth and
// detections are grouped once per (category, image) into flat vectors, every group is matched for all area ranges
// and IoU thresholds in one pass (in parallel), and accumulate() sorts each category's detections once for all area
// ranges and maxDets (a stable sort of a subset keeps the subset's order in the full stable sort).
#include "em/metrics/coco.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>
#include <unordered_map>
#include <utility>

#include <simdjson.h>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/threads.hpp"
#include "em/io/file.hpp"
#include "em/io/json_dom.hpp"
#include "em/metrics/numeric.hpp"

namespace em::metrics {

// ============================================================================================ parsing

namespace {

namespace dom = simdjson::dom;

// Where a value sits ("gt.json: annotations[12].bbox"); formatted only when something is wrong, so that parsing
// millions of detections builds no strings.
struct Loc {
  const std::string& what;
  const char* list;  // "annotations", or "" for the top-level array of a results file
  std::size_t index;
  const char* field = nullptr;
  Loc at(const char* f) const { return Loc{what, list, index, f}; }
  std::string str() const {
    std::string s = fmt::format("{}: {}[{}]", what, list, index);
    if (field) s += fmt::format(".{}", field);
    return s;
  }
};

double as_number(dom::element e, const Loc& loc) {
  switch (e.type()) {
    case dom::element_type::INT64: return static_cast<double>(int64_t(e));
    case dom::element_type::UINT64: return static_cast<double>(uint64_t(e));
    case dom::element_type::DOUBLE: return double(e);
    default: fail("{}: expected a number, got {}", loc.str(), io::json_type_name(e.type()));
  }
}

// COCO ids are integers; 3.0 is accepted as 3 (Python's dict treats them as the same key).
std::int64_t as_id(dom::element e, const Loc& loc) {
  switch (e.type()) {
    case dom::element_type::INT64: return int64_t(e);
    case dom::element_type::UINT64: {
      uint64_t v = uint64_t(e);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail("{}: id {} is too large", loc.str(), v);
      return static_cast<int64_t>(v);
    }
    case dom::element_type::DOUBLE: {
      double v = double(e);
      if (std::floor(v) != v || std::fabs(v) > 9.0e15) fail("{}: expected an integer id, got {}", loc.str(), v);
      return static_cast<int64_t>(v);
    }
    default: fail("{}: expected an integer id, got {}", loc.str(), io::json_type_name(e.type()));
  }
}

std::array<double, 4> as_bbox(dom::element e, const Loc& loc) {
  dom::array arr;
  if (e.get(arr)) fail("{}: expected [x, y, w, h], got {}", loc.str(), io::json_type_name(e.type()));
  if (arr.size() != 4) fail("{}: expected [x, y, w, h] (4 numbers), got {} values", loc.str(), arr.size());
  std::array<double, 4> box{};
  std::size_t i = 0;
  for (dom::element v : arr) box[i++] = as_number(v, loc);
  return box;
}

dom::element parse_root(dom::parser& parser, const simdjson::padded_string& text, const std::string& what) {
  dom::element root;
  if (auto err = parser.parse(text).get(root)) fail("{}: invalid JSON ({})", what, simdjson::error_message(err));
  return root;
}

dom::array require_array(dom::element e, const std::string& where) {
  dom::array arr;
  if (e.get(arr)) fail("{}: expected an array, got {}", where, io::json_type_name(e.type()));
  return arr;
}

dom::object require_object(dom::element e, const Loc& loc) {
  dom::object obj;
  if (e.get(obj)) fail("{}: expected an object, got {}", loc.str(), io::json_type_name(e.type()));
  return obj;
}

// Files are read straight into simdjson's padded buffer (no copy); "-" and unreadable paths go through io::read_file,
// which reads stdin and words the error the way every tool does.
simdjson::padded_string read_padded(const std::string& path) {
  if (path != "-") {
    simdjson::padded_string text;
    if (!simdjson::padded_string::load(path).get(text)) return text;
  }
  return simdjson::padded_string(io::read_file(path));
}

CocoGroundTruth parse_ground_truth(const simdjson::padded_string& text, const std::string& what) {
  dom::parser parser;
  dom::object root;
  {
    dom::element e = parse_root(parser, text, what);
    if (e.get(root)) fail("{}: expected a COCO ground-truth object, got {}", what, io::json_type_name(e.type()));
  }
  CocoGroundTruth gt;

  // pycocotools' COCO.createIndex reads "images", "categories" and "annotations"; loadRes() needs "categories".
  dom::element images, categories, annotations;
  if (root["images"].get(images)) fail("{}: missing field \"images\" (a COCO ground-truth file has one)", what);
  if (root["categories"].get(categories))
    fail("{}: missing field \"categories\" (a COCO ground-truth file has one)", what);
  bool has_annotations = !root["annotations"].get(annotations);

  std::size_t index = 0;
  for (dom::element e : require_array(images, what + ": images")) {
    Loc loc{what, "images", index++};
    CocoImage img;
    bool has_id = false;
    for (auto field : require_object(e, loc)) {
      if (field.key == "id") {
        img.id = as_id(field.value, loc.at("id"));
        has_id = true;
      } else if (field.key == "file_name") {
        std::string_view s;
        if (!field.value.get(s)) img.file_name = std::string(s);
      } else if (field.key == "width") {
        if (field.value.is_number()) img.width = static_cast<int>(as_number(field.value, loc.at("width")));
      } else if (field.key == "height") {
        if (field.value.is_number()) img.height = static_cast<int>(as_number(field.value, loc.at("height")));
      }
    }
    if (!has_id) fail("{}: missing field \"id\"", loc.str());
    gt.images.push_back(std::move(img));
  }

  index = 0;
  for (dom::element e : require_array(categories, what + ": categories")) {
    Loc loc{what, "categories", index++};
    CocoCategory cat;
    bool has_id = false, has_name = false;
    for (auto field : require_object(e, loc)) {
      if (field.key == "id") {
        cat.id = as_id(field.value, loc.at("id"));
        has_id = true;
      } else if (field.key == "name") {
        std::string_view s;
        if (field.value.get(s)) fail("{}: expected a string, got {}", loc.at("name").str(), io::json_type_name(field.value.type()));
        cat.name = std::string(s);
        has_name = true;
      }
    }
    if (!has_id) fail("{}: missing field \"id\"", loc.str());
    if (!has_name) cat.name = std::to_string(cat.id);
    gt.categories.push_back(std::move(cat));
  }

  std::size_t missing_area = 0;
  if (has_annotations) {
    index = 0;
    dom::array anns = require_array(annotations, what + ": annotations");
    gt.annotations.reserve(anns.size());
    for (dom::element e : anns) {
      Loc loc{what, "annotations", index++};
      CocoAnnotation ann;
      bool has_id = false, has_image = false, has_cat = false, has_bbox = false, has_area = false;
      for (auto field : require_object(e, loc)) {
        if (field.key == "id") {
          ann.id = as_id(field.value, loc.at("id"));
          has_id = true;
        } else if (field.key == "image_id") {
          ann.image_id = as_id(field.value, loc.at("image_id"));
          has_image = true;
        } else if (field.key == "category_id") {
          ann.category_id = as_id(field.value, loc.at("category_id"));
          has_cat = true;
        } else if (field.key == "bbox") {
          ann.bbox = as_bbox(field.value, loc.at("bbox"));
          has_bbox = true;
        } else if (field.key == "area") {
          ann.area = as_number(field.value, loc.at("area"));
          has_area = true;
        } else if (field.key == "iscrowd") {
          // cocoeval.py:109 takes its truth value; a boolean is accepted as well.
          bool b;
          if (!field.value.get(b)) {
            ann.iscrowd = b;
          } else {
            ann.iscrowd = as_number(field.value, loc.at("iscrowd")) != 0;
          }
        }
      }
      if (!has_id) fail("{}: missing field \"id\" (pycocotools indexes annotations by id)", loc.str());
      if (!has_image) fail("{}: missing field \"image_id\"", loc.str());
      if (!has_cat) fail("{}: missing field \"category_id\"", loc.str());
      if (!has_bbox) fail("{}: missing field \"bbox\" ([x, y, w, h])", loc.str());
      if (!has_area) {
        // pycocotools would raise KeyError; torchvision's convert_to_coco_api uses the box area, so do we.
        ann.area = ann.bbox[2] * ann.bbox[3];
        ++missing_area;
      }
      gt.annotations.push_back(ann);
    }
  }
  if (missing_area > 0)
    log::warn("{}: {} of {} annotations have no \"area\"; using w*h for the small/medium/large ranges", what,
              missing_area, gt.annotations.size());
  return gt;
}

CocoResults parse_results(const simdjson::padded_string& text, const std::string& what) {
  dom::parser parser;
  dom::element root = parse_root(parser, text, what);
  // coco.py loadRes: "results in not an array of objects".
  dom::array arr;
  if (root.get(arr))
    fail("{}: expected the COCO results format, a JSON array of {{\"image_id\", \"category_id\", \"bbox\", \"score\"}}, "
         "got {}",
         what, io::json_type_name(root.type()));
  CocoResults res;
  res.detections.reserve(arr.size());
  std::size_t index = 0;
  for (dom::element e : arr) {
    Loc loc{what, "", index++};
    CocoDetection det;
    bool has_image = false, has_cat = false, has_bbox = false, has_score = false;
    for (auto field : require_object(e, loc)) {
      if (field.key == "image_id") {
        det.image_id = as_id(field.value, loc.at("image_id"));
        has_image = true;
      } else if (field.key == "category_id") {
        det.category_id = as_id(field.value, loc.at("category_id"));
        has_cat = true;
      } else if (field.key == "bbox") {
        det.bbox = as_bbox(field.value, loc.at("bbox"));
        has_bbox = true;
      } else if (field.key == "score") {
        det.score = as_number(field.value, loc.at("score"));
        has_score = true;
      }
      // Everything else ("area", "segmentation", "iscrowd", "category_name", ...) is ignored: loadRes overwrites
      // area with w*h and iscrowd with 0 (coco.py:338-340).
    }
    if (!has_image) fail("{}: missing field \"image_id\"", loc.str());
    if (!has_cat) fail("{}: missing field \"category_id\"", loc.str());
    if (!has_bbox) fail("{}: missing field \"bbox\" ([x, y, w, h]); only box results are evaluated", loc.str());
    if (!has_score) fail("{}: missing field \"score\"", loc.str());
    res.detections.push_back(det);
  }
  return res;
}

}  // namespace

CocoGroundTruth parse_coco_ground_truth(std::string_view json_text, const std::string& what) {
  return parse_ground_truth(simdjson::padded_string(json_text), what);
}

CocoGroundTruth load_coco_ground_truth(const std::string& path) { return parse_ground_truth(read_padded(path), path); }

CocoResults parse_coco_results(std::string_view json_text, const std::string& what) {
  return parse_results(simdjson::padded_string(json_text), what);
}

CocoResults load_coco_results(const std::string& path) { return parse_results(read_padded(path), path); }

// ============================================================================================ parameters

namespace {
// One 64-bit mask per (detection, area range) holds evaluateImg's per-threshold output: bit t = dtm[t] != 0 (matched
// to a ground truth whose id is not 0), bit 32 + t = dtIgnore[t].
constexpr int kIgnoredShift = 32;
constexpr std::size_t kMaxIouThresholds = 32;
}  // namespace

std::vector<double> numpy_linspace(double start, double stop, int num) {
  // numpy/core/function_base.py linspace (endpoint=True): y = arange(num) * step + start; y[-1] = stop.
  std::vector<double> y(static_cast<std::size_t>(std::max(num, 0)));
  if (num <= 0) return y;
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int i = 0; i < num; ++i) y[static_cast<std::size_t>(i)] = static_cast<double>(i) * step + start;
  y.back() = stop;
  return y;
}

void CocoEvalParams::validate() const {
  if (iou_thresholds.empty()) usage_fail("coco eval: iou_thresholds is empty; the COCO default is 0.50:0.05:0.95");
  for (double t : iou_thresholds)
    if (!(t >= 0 && t <= 1)) usage_fail("coco eval: iou_thresholds: {} is outside [0, 1]", t);
  if (recall_thresholds.empty()) usage_fail("coco eval: recall_thresholds is empty; the COCO default is 0:0.01:1");
  for (std::size_t i = 0; i < recall_thresholds.size(); ++i) {
    if (!(recall_thresholds[i] >= 0 && recall_thresholds[i] <= 1))
      usage_fail("coco eval: recall_thresholds: {} is outside [0, 1]", recall_thresholds[i]);
    if (i > 0 && recall_thresholds[i] < recall_thresholds[i - 1])
      usage_fail("coco eval: recall_thresholds must be increasing ({} after {})", recall_thresholds[i],
                 recall_thresholds[i - 1]);
  }
  if (max_dets.size() != 3)
    usage_fail("coco eval: max_dets needs 3 values (COCOeval.summarize reads maxDets[0..2]), got {}", max_dets.size());
  for (std::size_t i = 0; i < max_dets.size(); ++i) {
    if (max_dets[i] < 1) usage_fail("coco eval: max_dets: {} must be >= 1", max_dets[i]);
    if (i > 0 && max_dets[i] <= max_dets[i - 1])
      usage_fail("coco eval: max_dets must be strictly increasing, got {} after {}", max_dets[i], max_dets[i - 1]);
  }
  if (area_ranges.empty()) usage_fail("coco eval: area_ranges is empty");
  for (std::size_t i = 0; i < area_ranges.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (area_ranges[i].label == area_ranges[j].label)
        usage_fail("coco eval: area_ranges: label \"{}\" is used twice", area_ranges[i].label);
  if (iou_thresholds.size() > kMaxIouThresholds)
    usage_fail("coco eval: at most {} iou_thresholds, got {}", kMaxIouThresholds, iou_thresholds.size());
  if (threads < 0) usage_fail("coco eval: threads: {} must be >= 0 (0 = all cores)", threads);
}

// ============================================================================================ evaluation

namespace {


// Runs fn(i) for i in [0, n) on up to `threads` threads; the first exception is rethrown here.
template <typename Fn>
void parallel_for(std::size_t n, int threads, Fn&& fn) {
  std::size_t workers = static_cast<std::size_t>(threads > 0 ? threads : usable_cpus());
  workers = std::max<std::size_t>(1, std::min(workers, n));
  if (workers <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// np.mean(s[s > -1]) or -1 when nothing is left (cocoeval.py:452-455), numpy's summation to the last bit.
double mean_of_valid(const std::vector<double>& values) {
  if (values.empty()) return -1;
  return numpy_sum(values) / static_cast<double>(values.size());
}

struct GtBox {
  std::array<double, 4> bbox;
  double area;
  bool crowd;
  bool id_nonzero;  // dtm holds the gt id and accumulate() tests it for truth: a match to id 0 counts as none
};

struct DtBox {
  std::array<double, 4> bbox;
  double area;  // w*h (coco.py:338)
  double score;
};

// A non-empty (category, image) pair; ranges index the key-sorted gt / dt lists.
struct Group {
  std::uint32_t k = 0;
  std::size_t gt_begin = 0, gt_end = 0;
  std::size_t dt_begin = 0, dt_end = 0;
  std::size_t out_offset = 0;  // first slot of this group's kept detections in its category's buffers
};

struct CategoryBuffers {
  std::size_t n = 0;                 // detections kept (<= maxDets[-1] per image), images in id order
  std::vector<double> scores;        // dtScores, per image sorted by score
  std::vector<std::uint32_t> rank;   // position in its image's sorted list: kept for maxDet m iff rank < maxDets[m]
  std::vector<std::uint64_t> masks;  // [A][n]: matched / ignored bits per IoU threshold
  std::vector<std::size_t> npig;     // [A]: non-ignored ground truth over all images
};

}  // namespace

CocoEvalResult coco_evaluate(const CocoGroundTruth& gt, const CocoResults& results, const CocoEvalParams& params) {
  params.validate();
  const auto& iou_thrs = params.iou_thresholds;
  const auto& rec_thrs = params.recall_thresholds;
  const auto& area_rng = params.area_ranges;
  const std::size_t T = iou_thrs.size(), R = rec_thrs.size(), A = area_rng.size(), M = params.max_dets.size();
  const std::size_t max_det_last = static_cast<std::size_t>(params.max_dets.back());

  // p.imgIds = sorted(unique(image ids)), p.catIds = sorted(unique(category ids)) (cocoeval.py:80-81, 134-136).
  std::vector<std::int64_t> img_ids;
  img_ids.reserve(gt.images.size());
  for (const auto& img : gt.images) img_ids.push_back(img.id);
  std::sort(img_ids.begin(), img_ids.end());
  img_ids.erase(std::unique(img_ids.begin(), img_ids.end()), img_ids.end());
  // Category names: the last entry for an id wins, as in COCO.createIndex's dict.
  std::unordered_map<std::int64_t, std::string> cat_name;
  for (const auto& c : gt.categories) cat_name[c.id] = c.name;
  std::vector<std::int64_t> cat_ids;
  for (const auto& [id, name] : cat_name) cat_ids.push_back(id);
  std::sort(cat_ids.begin(), cat_ids.end());
  const std::size_t I = img_ids.size(), K = cat_ids.size();

  std::unordered_map<std::int64_t, std::uint32_t> img_index, cat_index;
  img_index.reserve(I * 2);
  for (std::size_t i = 0; i < I; ++i) img_index[img_ids[i]] = static_cast<std::uint32_t>(i);
  for (std::size_t k = 0; k < K; ++k) cat_index[cat_ids[k]] = static_cast<std::uint32_t>(k);

  CocoEvalResult res;
  res.T = T, res.R = R, res.K = K, res.A = A, res.M = M;
  res.category_ids = cat_ids;
  for (auto id : cat_ids) res.category_names.push_back(cat_name[id]);
  res.precision.assign(T * R * K * A * M, -1.0);  // cocoeval.py:334
  res.recall.assign(T * K * A * M, -1.0);
  res.num_images = I;

  // ---- _prepare (cocoeval.py:84-119): ground truth and detections per (image, category) ----
  // Keys sort by category, then image (the order of evalImgs, cocoeval.py:154-158); the index breaks ties, so each
  // group keeps file order as imgToAnns does (coco.py:97, and loadRes numbers results in file order).
  using Keyed = std::pair<std::uint64_t, std::uint32_t>;
  auto key_of = [&](std::uint32_t k, std::uint32_t i) { return static_cast<std::uint64_t>(k) * I + i; };

  {  // Duplicate annotation ids make pycocotools evaluate one box twice and drop the other (anns[id] is a dict).
    std::unordered_map<std::int64_t, std::size_t> seen;
    seen.reserve(gt.annotations.size() * 2);
    for (std::size_t a = 0; a < gt.annotations.size(); ++a) {
      auto [it, fresh] = seen.emplace(gt.annotations[a].id, a);
      if (!fresh)
        fail("ground truth: annotations[{}] and annotations[{}] both have id {}; annotation ids must be unique "
             "(pycocotools would silently evaluate one box twice and lose the other)",
             it->second, a, gt.annotations[a].id);
    }
  }

  std::vector<Keyed> gt_keys;
  gt_keys.reserve(gt.annotations.size());
  bool gt_id_zero = false;
  for (std::size_t a = 0; a < gt.annotations.size(); ++a) {
    const auto& ann = gt.annotations[a];
    auto ii = img_index.find(ann.image_id);
    auto kk = cat_index.find(ann.category_id);
    if (ii == img_index.end() || kk == cat_index.end()) continue;  // getAnnIds(imgIds=..., catIds=...) filters
    gt_keys.emplace_back(key_of(kk->second, ii->second), static_cast<std::uint32_t>(a));
    if (ann.id == 0) gt_id_zero = true;
  }
  std::sort(gt_keys.begin(), gt_keys.end());
  res.num_ground_truth = gt_keys.size();
  if (gt_id_zero)
    log::warn("ground truth: an annotation has id 0; pycocotools (and so this evaluation) counts a detection matched "
              "to it as a false positive — number annotation ids from 1");

  std::vector<Keyed> dt_keys;
  dt_keys.reserve(results.detections.size());
  std::size_t unknown_category = 0;
  for (std::size_t d = 0; d < results.detections.size(); ++d) {
    const auto& det = results.detections[d];
    auto ii = img_index.find(det.image_id);
    // coco.py:324 asserts "Results do not correspond to current coco set".
    if (ii == img_index.end())
      fail("results[{}]: image_id {} is not an image of the ground truth; results must belong to its images", d,
           det.image_id);
    if (!std::isfinite(det.score)) fail("results[{}]: score {} is not a finite number", d, det.score);
    auto kk = cat_index.find(det.category_id);
    if (kk == cat_index.end()) {
      ++unknown_category;
      continue;
    }
    dt_keys.emplace_back(key_of(kk->second, ii->second), static_cast<std::uint32_t>(d));
  }
  std::sort(dt_keys.begin(), dt_keys.end());
  res.num_detections = dt_keys.size();
  if (unknown_category > 0)
    log::warn("results: {} of {} detections have a category_id the ground truth does not define; ignored, as "
              "pycocotools does",
              unknown_category, results.detections.size());

  // ---- the non-empty (category, image) groups and each category's output slots ----
  std::vector<Group> groups;
  std::vector<CategoryBuffers> cats(K);
  {
    std::size_t g = 0, d = 0;
    while (g < gt_keys.size() || d < dt_keys.size()) {
      std::uint64_t key = std::min(g < gt_keys.size() ? gt_keys[g].first : UINT64_MAX,
                                   d < dt_keys.size() ? dt_keys[d].first : UINT64_MAX);
      Group grp;
      grp.k = static_cast<std::uint32_t>(key / (I ? I : 1));
      grp.gt_begin = g;
      while (g < gt_keys.size() && gt_keys[g].first == key) ++g;
      grp.gt_end = g;
      grp.dt_begin = d;
      while (d < dt_keys.size() && dt_keys[d].first == key) ++d;
      grp.dt_end = d;
      auto& cb = cats[grp.k];
      grp.out_offset = cb.n;
      cb.n += std::min(grp.dt_end - grp.dt_begin, max_det_last);
      groups.push_back(grp);
    }
  }
  for (auto& cb : cats) {
    cb.scores.resize(cb.n);
    cb.rank.resize(cb.n);
    cb.masks.assign(A * cb.n, 0);
    cb.npig.assign(A, 0);
  }
  std::vector<std::size_t> group_npig(groups.size() * A, 0);

  // ---- evaluate(): computeIoU + evaluateImg for every area range (cocoeval.py:163-190, 235-313) ----
  constexpr std::size_t kChunk = 64;
  parallel_for((groups.size() + kChunk - 1) / kChunk, params.threads, [&](std::size_t chunk) {
    std::vector<DtBox> dt;
    std::vector<GtBox> gtb;
    std::vector<double> ious, ious_sorted;
    std::vector<std::uint32_t> order, gtind;
    std::vector<std::uint8_t> gt_ignore, sorted_ignore, sorted_crowd, sorted_id_nonzero, gtm, out_of_range;
    for (std::size_t gi = chunk * kChunk; gi < std::min(groups.size(), (chunk + 1) * kChunk); ++gi) {
      const Group& grp = groups[gi];
      auto& cb = cats[grp.k];

      // dt sorted by score, highest first, stable (np.argsort(-scores, kind='mergesort')), cut at maxDets[-1]. A
      // stable sort's result is unique: equal to sorting by (score descending, file position).
      const std::size_t d_all = grp.dt_end - grp.dt_begin;
      order.resize(d_all);
      std::iota(order.begin(), order.end(), 0u);
      auto score_of = [&](std::uint32_t j) { return results.detections[dt_keys[grp.dt_begin + j].second].score; };
      std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
        const double sx = score_of(x), sy = score_of(y);
        return sx > sy || (sx == sy && x < y);
      });
      const std::size_t D = std::min(d_all, max_det_last);
      dt.resize(D);
      for (std::size_t j = 0; j < D; ++j) {
        const auto& det = results.detections[dt_keys[grp.dt_begin + order[j]].second];
        dt[j] = DtBox{det.bbox, det.bbox[2] * det.bbox[3], det.score};
        cb.scores[grp.out_offset + j] = det.score;
        cb.rank[grp.out_offset + j] = static_cast<std::uint32_t>(j);
      }

      const std::size_t G = grp.gt_end - grp.gt_begin;
      gtb.resize(G);
      for (std::size_t j = 0; j < G; ++j) {
        const auto& ann = gt.annotations[gt_keys[grp.gt_begin + j].second];
        gtb[j] = GtBox{ann.bbox, ann.area, ann.iscrowd, ann.id != 0};
      }

      // maskUtils.iou(d, g, iscrowd) = maskApi.c bbIou, the same operations in the same order; [] when either is
      // empty.
      ious.assign(D * G, 0.0);
      for (std::size_t gg = 0; gg < G; ++gg) {
        const auto& G4 = gtb[gg].bbox;
        const double ga = G4[2] * G4[3];
        for (std::size_t dd = 0; dd < D; ++dd) {
          const auto& D4 = dt[dd].bbox;
          const double da = D4[2] * D4[3];
          const double w = std::fmin(D4[2] + D4[0], G4[2] + G4[0]) - std::fmax(D4[0], G4[0]);
          if (w <= 0) continue;
          const double h = std::fmin(D4[3] + D4[1], G4[3] + G4[1]) - std::fmax(D4[1], G4[1]);
          if (h <= 0) continue;
          const double inter = w * h;
          const double u = gtb[gg].crowd ? da : da + ga - inter;
          ious[dd * G + gg] = inter / u;
        }
      }

      for (std::size_t a = 0; a < A; ++a) {
        const double lo = area_rng[a].min_area, hi = area_rng[a].max_area;
        // g['_ignore'] (cocoeval.py:250-254): crowd, or area outside the range.
        gt_ignore.resize(G);
        std::size_t npig = 0;
        for (std::size_t j = 0; j < G; ++j) {
          gt_ignore[j] = gtb[j].crowd || gtb[j].area < lo || gtb[j].area > hi;
          if (!gt_ignore[j]) ++npig;
        }
        group_npig[gi * A + a] = npig;
        // gt sorted ignore last, stable (cocoeval.py:257-258).
        gtind.clear();
        for (std::size_t j = 0; j < G; ++j)
          if (!gt_ignore[j]) gtind.push_back(static_cast<std::uint32_t>(j));
        for (std::size_t j = 0; j < G; ++j)
          if (gt_ignore[j]) gtind.push_back(static_cast<std::uint32_t>(j));
        sorted_ignore.resize(G);
        sorted_crowd.resize(G);
        sorted_id_nonzero.resize(G);
        for (std::size_t j = 0; j < G; ++j) {
          sorted_ignore[j] = gt_ignore[gtind[j]];
          sorted_crowd[j] = gtb[gtind[j]].crowd;
          sorted_id_nonzero[j] = gtb[gtind[j]].id_nonzero;
        }
        ious_sorted.resize(D * G);
        for (std::size_t dd = 0; dd < D; ++dd)
          for (std::size_t j = 0; j < G; ++j) ious_sorted[dd * G + j] = ious[dd * G + gtind[j]];
        // Unmatched detections outside the area range are ignored (cocoeval.py:298-299).
        out_of_range.resize(D);
        for (std::size_t dd = 0; dd < D; ++dd) out_of_range[dd] = dt[dd].area < lo || dt[dd].area > hi;

        std::uint64_t* masks = cb.masks.data() + a * cb.n + grp.out_offset;
        for (std::size_t t = 0; t < T; ++t) {
          gtm.assign(G, 0);
          for (std::size_t dd = 0; dd < D; ++dd) {
            // Greedy matching, cocoeval.py:274-296, branch for branch.
            double iou = std::min(iou_thrs[t], 1 - 1e-10);
            std::ptrdiff_t m = -1;
            const double* row = ious_sorted.data() + dd * G;
            for (std::size_t j = 0; j < G; ++j) {
              // if this gt already matched, and not a crowd, continue
              if (gtm[j] && !sorted_crowd[j]) continue;
              // if dt matched to reg gt, and on ignore gt, stop
              if (m > -1 && !sorted_ignore[static_cast<std::size_t>(m)] && sorted_ignore[j]) break;
              // continue to next gt unless better match made
              if (row[j] < iou) continue;
              iou = row[j];
              m = static_cast<std::ptrdiff_t>(j);
            }
            bool matched_nonzero = false, ignored = false;
            if (m != -1) {
              ignored = sorted_ignore[static_cast<std::size_t>(m)];   // dtIg[tind,dind] = gtIg[m]
              matched_nonzero = sorted_id_nonzero[static_cast<std::size_t>(m)];  // dtm = gt id
              gtm[static_cast<std::size_t>(m)] = 1;                 // gtm = d['id'] >= 1
            }
            if (!matched_nonzero && out_of_range[dd]) ignored = true;
            if (matched_nonzero) masks[dd] |= std::uint64_t{1} << t;
            if (ignored) masks[dd] |= std::uint64_t{1} << (kIgnoredShift + t);
          }
        }
      }
    }
  });

  for (std::size_t gi = 0; gi < groups.size(); ++gi)
    for (std::size_t a = 0; a < A; ++a) cats[groups[gi].k].npig[a] += group_npig[gi * A + a];

  // ---- accumulate() (cocoeval.py:315-418) ----
  // All images' kept detections of a category, in image-id order, sorted by score with a stable sort
  // (cocoeval.py:362-366). Sorted once per category; each (area, maxDet) walks that order and skips the detections
  // past maxDet in their image (e['dtScores'][0:maxDet]): a stable sort of a subset keeps the full sort's order.
  std::vector<std::vector<std::uint32_t>> cat_order(K);
  parallel_for(K, params.threads, [&](std::size_t k) {
    auto& order = cat_order[k];
    const auto& sc = cats[k].scores;
    order.resize(cats[k].n);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return sc[x] > sc[y] || (sc[x] == sc[y] && x < y);
    });
  });

  // pycocotools computes rc and pr at every detection, makes pr monotone from the right and reads it at
  // searchsorted(rc, recThrs, 'left'). The same numbers come from the true positives alone: rc only grows at a true
  // positive, so searchsorted lands on one (or on index 0 for a threshold of 0, where the answer is the overall
  // maximum); and after a true positive, pr only falls (same tp, more fp) until the next, so the suffix maximum is a
  // maximum over true positives. rc and pr are computed with pycocotools' operations: tp / npig and
  // tp / (fp + tp + eps) in float64.
  const double eps = std::nextafter(1.0, 2.0) - 1.0;  // np.spacing(1)
  const std::uint64_t t_bits = T == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << T) - 1;
  parallel_for(K * A, params.threads, [&](std::size_t task) {
    const std::size_t k = task / A, a = task % A;
    const auto& cb = cats[k];
    const std::size_t npig = cb.npig[a];
    if (npig == 0) return;  // no (non-ignored) ground truth: precision and recall stay -1 (cocoeval.py:360, 373)
    const double npig_d = static_cast<double>(npig);
    const auto& order = cat_order[k];
    std::vector<std::uint64_t> mask(cb.n);
    std::vector<std::uint32_t> rank(cb.n);
    for (std::size_t j = 0; j < cb.n; ++j) {
      mask[j] = cb.masks[a * cb.n + order[j]];
      rank[j] = cb.rank[order[j]];
    }
    struct Point {
      double rc, pr;
    };
    std::vector<std::vector<Point>> tps(T);
    std::vector<std::uint64_t> tp(T), ign(T);
    for (std::size_t m = 0; m < M; ++m) {
      const std::uint32_t max_det = static_cast<std::uint32_t>(params.max_dets[m]);
      for (auto& v : tps) v.clear();
      std::fill(tp.begin(), tp.end(), 0);
      std::fill(ign.begin(), ign.end(), 0);
      std::uint64_t seen = 0, ign_all = 0;
      for (std::size_t j = 0; j < cb.n; ++j) {
        if (rank[j] >= max_det) continue;
        ++seen;
        const std::uint64_t ignored = (mask[j] >> kIgnoredShift) & t_bits;
        if (ignored == t_bits) {  // ignored at every threshold (outside the area range, or on a crowd)
          ++ign_all;
          continue;
        }
        for (std::uint64_t b = ignored; b; b &= b - 1) ++ign[static_cast<std::size_t>(__builtin_ctzll(b))];
        for (std::uint64_t b = mask[j] & t_bits & ~ignored; b; b &= b - 1) {  // tps = dtm & ~dtIg
          const auto t = static_cast<std::size_t>(__builtin_ctzll(b));
          const double tpv = static_cast<double>(++tp[t]);
          const double fpv = static_cast<double>(seen - tp[t] - ign_all - ign[t]);
          tps[t].push_back({tpv / npig_d, tpv / (fpv + tpv + eps)});
        }
      }
      for (std::size_t t = 0; t < T; ++t) {
        auto& pts = tps[t];
        res.recall[((t * K + k) * A + a) * M + m] = seen ? static_cast<double>(tp[t]) / npig_d : 0.0;
        for (std::size_t i = pts.size(); i-- > 1;)  // monotone from the right (cocoeval.py:398-400)
          if (pts[i].pr > pts[i - 1].pr) pts[i - 1].pr = pts[i].pr;
        // np.searchsorted(rc, recThrs, side='left'); past the end the rest stays 0 (the try/except, 403-408).
        std::size_t pi = 0;
        for (std::size_t r = 0; r < R; ++r) {
          while (pi < pts.size() && pts[pi].rc < rec_thrs[r]) ++pi;
          res.precision[(((t * R + r) * K + k) * A + a) * M + m] = pi < pts.size() ? pts[pi].pr : 0.0;
        }
      }
    }
  });

  // ---- summarize() (cocoeval.py:422-471) ----
  auto area_index = [&](const std::string& label) -> std::ptrdiff_t {
    for (std::size_t a = 0; a < A; ++a)
      if (area_rng[a].label == label) return static_cast<std::ptrdiff_t>(a);
    return -1;
  };
  auto iou_indices = [&](const double* thr) {
    std::vector<std::size_t> ts;
    for (std::size_t t = 0; t < T; ++t)
      if (thr == nullptr || iou_thrs[t] == *thr) ts.push_back(t);  // np.where(iouThr == p.iouThrs)
    return ts;
  };
  // k < 0: all categories (the summary); k >= 0: one category (per-class AP).
  auto summarize = [&](bool ap, const double* iou_thr, const std::string& area, int max_dets, std::ptrdiff_t k_only) {
    const std::ptrdiff_t a = area_index(area);
    std::ptrdiff_t m = -1;
    for (std::size_t j = 0; j < M; ++j)
      if (params.max_dets[j] == max_dets) m = static_cast<std::ptrdiff_t>(j);
    if (a < 0 || m < 0) return -1.0;
    const auto ua = static_cast<std::size_t>(a), um = static_cast<std::size_t>(m);
    std::vector<double> s;
    const std::size_t k0 = k_only < 0 ? 0 : static_cast<std::size_t>(k_only);
    const std::size_t k1 = k_only < 0 ? K : k0 + 1;
    for (std::size_t t : iou_indices(iou_thr)) {
      if (ap) {
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t k = k0; k < k1; ++k) {
            double v = res.precision_at(t, r, k, ua, um);
            if (v > -1) s.push_back(v);
          }
      } else {
        for (std::size_t k = k0; k < k1; ++k) {
          double v = res.recall_at(t, k, ua, um);
          if (v > -1) s.push_back(v);
        }
      }
    }
    return mean_of_valid(s);
  };
  const auto& md = params.max_dets;
  const double i50 = 0.5, i75 = 0.75;
  res.stats[0] = summarize(true, nullptr, "all", md[2], -1);
  res.stats[1] = summarize(true, &i50, "all", md[2], -1);
  res.stats[2] = summarize(true, &i75, "all", md[2], -1);
  res.stats[3] = summarize(true, nullptr, "small", md[2], -1);
  res.stats[4] = summarize(true, nullptr, "medium", md[2], -1);
  res.stats[5] = summarize(true, nullptr, "large", md[2], -1);
  res.stats[6] = summarize(false, nullptr, "all", md[0], -1);
  res.stats[7] = summarize(false, nullptr, "all", md[1], -1);
  res.stats[8] = summarize(false, nullptr, "all", md[2], -1);
  res.stats[9] = summarize(false, nullptr, "small", md[2], -1);
  res.stats[10] = summarize(false, nullptr, "medium", md[2], -1);
  res.stats[11] = summarize(false, nullptr, "large", md[2], -1);
  for (std::size_t k = 0; k < K; ++k) {
    res.ap_per_category.push_back(summarize(true, nullptr, "all", md[2], static_cast<std::ptrdiff_t>(k)));
    res.ap50_per_category.push_back(summarize(true, &i50, "all", md[2], static_cast<std::ptrdiff_t>(k)));
  }
  return res;
}

// ============================================================================================ output

io::Json to_json(const CocoEvalResult& result, const std::vector<std::string>& category_names) {
  const auto& names = category_names.empty() ? result.category_names : category_names;
  if (names.size() != result.category_ids.size())
    fail("coco eval: {} category names given for {} categories", names.size(), result.category_ids.size());
  io::Json out = io::Json::object();
  for (std::size_t i = 0; i < kCocoStatNames.size(); ++i) out[kCocoStatNames[i]] = result.stats[i];
  io::Json per_class = io::Json::object();
  for (std::size_t k = 0; k < names.size(); ++k) {
    std::string name = names[k];
    if (per_class.contains(name)) name = fmt::format("{} (id {})", name, result.category_ids[k]);
    per_class[name] = io::Json{{"AP", result.ap_per_category[k]}, {"AP50", result.ap50_per_category[k]}};
  }
  out["per_class"] = std::move(per_class);
  return out;
}

std::string format_coco_summary(const CocoEvalResult& result, const CocoEvalParams& params) {
  // cocoeval.py:429-456: ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_det;
  };
  const auto& md = params.max_dets;
  const std::string all_iou = fmt::format("{:0.2f}:{:0.2f}", params.iou_thresholds.front(),
                                          params.iou_thresholds.back());
  const Line lines[12] = {{true, nullptr, "all", md[2]},     {true, "0.50", "all", md[2]},
                          {true, "0.75", "all", md[2]},      {true, nullptr, "small", md[2]},
                          {true, nullptr, "medium", md[2]},  {true, nullptr, "large", md[2]},
                          {false, nullptr, "all", md[0]},    {false, nullptr, "all", md[1]},
                          {false, nullptr, "all", md[2]},    {false, nullptr, "small", md[2]},
                          {false, nullptr, "medium", md[2]}, {false, nullptr, "large", md[2]}};
  std::string out;
  for (std::size_t i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    out += fmt::format(" {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}\n",
                       l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)",
                       l.iou ? std::string(l.iou) : all_iou, l.area, l.max_det, result.stats[i]);
  }
  return out;
}

io::Json evaluate_coco_files(const std::string& gt_path, const std::string& results_path, int threads) {
  CocoGroundTruth gt = load_coco_ground_truth(gt_path);
  CocoResults res = load_coco_results(results_path);
  CocoEvalParams params;
  params.threads = threads;
  CocoEvalResult result = coco_evaluate(gt, res, params);
  log::info("COCO box evaluation: {} images, {} ground-truth boxes, {} detections, {} categories", result.num_images,
            result.num_ground_truth, result.num_detections, result.K);
  return to_json(result);
}

}  // namespace em::metrics
