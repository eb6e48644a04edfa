#include "em/data/coco_dataset.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/duplicates.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;

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
        fail("{}: {} (training needs train and validation, see docs/datasets.md)", s->problems.front().path,
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

namespace {

// The splits that exist; a missing train or validation is a problem (test is optional).
std::vector<CocoSplit> read_splits(const std::string& dir, ValidationReport& report) {
  std::vector<CocoSplit> splits;
  for (const char* name : {"train", "validation", "test"}) {
    CocoSplit s = read_coco_split(dir, name);
    if (!s.exists) {
      if (std::string(name) != "test") report.problems.push_back(s.problems.front());
      continue;
    }
    splits.push_back(std::move(s));
  }
  return splits;
}

// Every listed image, decoded once on `threads` threads, per split and image (the same file listed in two splits is
// decoded twice: cheap and simple).
std::vector<std::vector<DecodedInfo>> decode_images(const std::vector<CocoSplit>& splits, int threads) {
  std::vector<std::string> paths;
  for (const auto& s : splits)
    for (const auto& img : s.images) paths.push_back(img.path);
  std::vector<DecodedInfo> decoded = decode_all(paths, threads);
  std::vector<std::vector<DecodedInfo>> by_split;
  size_t k = 0;
  for (const auto& s : splits) {
    by_split.emplace_back(decoded.begin() + static_cast<std::ptrdiff_t>(k),
                          decoded.begin() + static_cast<std::ptrdiff_t>(k + s.images.size()));
    k += s.images.size();
  }
  return by_split;
}

// The file's own problems, train's categories, the repairable boxes and the warnings, into the report.
void report_file(const CocoSplit& s, const CocoSplit* train, ValidationReport& report) {
  for (auto& p : s.problems) report.problems.push_back(p);
  if (train && &s != train)
    for (auto& p : category_mismatches(*train, s)) report.problems.push_back(p);
  for (auto& p : s.repairable) report.problems.push_back(p);
  for (auto& p : s.warnings) report.warnings.push_back(p);
  if (s.images.empty() && s.problems.empty())
    report.problems.push_back({s.annotation_path, "images: no images in this split"});
}

// One image against its decoded file: undecodable, a declared size that disagrees, or (no size declared) boxes
// outside the decoded size.
void check_image(const CocoSplit& s, const CocoImageRecord& img, const DecodedInfo& d, ValidationReport& report) {
  const std::string where = fmt::format("images[{}]", img.index);
  if (!d.error.empty()) {
    report.problems.push_back(
        {img.path, fmt::format("{} (listed in {} as {}.file_name)", d.error, s.annotation_path, where)});
  } else if (img.width > 0 && img.height > 0 && (img.width != d.width || img.height != d.height)) {
    report.problems.push_back(
        {s.annotation_path, fmt::format("{}: width x height {}x{} disagrees with the file {} ({}x{})", where,
                                        img.width, img.height, img.file_name, d.width, d.height)});
  } else if (img.width == 0 || img.height == 0) {
    for (const auto& b : img.boxes) {
      if (degenerate_box(b.bbox)) continue;
      std::string outside = box_outside_reason(b.bbox, d.width, d.height);
      if (!outside.empty())
        report.problems.push_back({s.annotation_path, fmt::format("annotations[{}].bbox: {} (image {})", b.index,
                                                                  outside, img.file_name)});
    }
  }
}

// Image sizes and formats over every split, for the summary.
struct ImageStats {
  std::map<std::pair<int, int>, int64_t> sizes;
  std::map<std::string, int64_t> formats;
  void add(const DecodedInfo& d) {
    if (!d.error.empty()) return;
    sizes[{d.width, d.height}] += 1;
    formats[d.format] += 1;
  }
};

// A split's summary: images, boxes and crowd boxes, boxes per class, COCO box-size bins (COCOeval's area ranges:
// small < 32^2 <= medium < 96^2 <= large, on the "area" field) and a histogram of sqrt(w*h).
io::Json split_summary(const CocoSplit& s) {
  static const std::vector<std::pair<double, std::string>> bins = {
      {8, "<8"}, {16, "8-16"}, {32, "16-32"}, {64, "32-64"}, {128, "64-128"}, {256, "128-256"}, {512, "256-512"}};
  std::map<int64_t, std::string> names;
  io::Json per_class = io::Json::object();
  for (const auto& c : s.categories) names[c.id] = c.name, per_class[c.name] = 0;
  int64_t boxes = 0, crowd = 0, without_boxes = 0, small = 0, medium = 0, large = 0;
  std::vector<int64_t> histogram(bins.size() + 1, 0);
  for (const auto& img : s.images) {
    int64_t targets = 0;
    for (const auto& b : img.boxes) {
      if (b.iscrowd) {
        ++crowd;
        continue;
      }
      ++boxes, ++targets;
      per_class[names[b.category_id]] = per_class[names[b.category_id]].get<int64_t>() + 1;
      (b.area < 32.0 * 32.0 ? small : b.area < 96.0 * 96.0 ? medium : large) += 1;
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
  return {{"images", s.images.size()},
          {"images_without_boxes", without_boxes},
          {"boxes", boxes},
          {"crowd_boxes", crowd},
          {"boxes_per_class", per_class},
          {"box_sizes", {{"small", small}, {"medium", medium}, {"large", large}}},
          {"box_side_histogram", hist}};
}

// The dataset's summary: train's categories and their label order, the splits, image sizes and formats.
void summarize(const CocoSplit* train, io::Json split_summaries, const ImageStats& images, io::Json& summary) {
  io::Json cats = io::Json::array();
  if (train)
    for (size_t i = 0; i < train->categories.size(); ++i)
      cats.push_back({{"id", train->categories[i].id}, {"name", train->categories[i].name}, {"label", i}});
  summary["categories"] = cats;
  summary["num_labels"] = cats.size();
  summary["splits"] = std::move(split_summaries);
  if (images.sizes.empty()) return;
  int min_w = images.sizes.begin()->first.first, max_w = min_w;
  int min_h = images.sizes.begin()->first.second, max_h = min_h;
  for (const auto& [wh, n] : images.sizes) {
    min_w = std::min(min_w, wh.first), max_w = std::max(max_w, wh.first);
    min_h = std::min(min_h, wh.second), max_h = std::max(max_h, wh.second);
  }
  summary["image_size"] = {{"width", {{"min", min_w}, {"max", max_w}}},
                           {"height", {{"min", min_h}, {"max", max_h}}},
                           {"distinct_sizes", images.sizes.size()}};
  summary["formats"] = images.formats;
}

}  // namespace

ValidationReport validate_detection(const std::string& dir, int threads) {
  ValidationReport report = begin_report(Algo::detection, dir);
  if (!report.ok()) return report;
  const std::vector<CocoSplit> splits = read_splits(dir, report);
  const CocoSplit* train = nullptr;
  for (const auto& s : splits)
    if (s.name == "train") train = &s;
  const std::vector<std::vector<DecodedInfo>> decoded = decode_images(splits, threads);
  ImageStats images;
  std::vector<ImageFingerprint> fingerprints;
  io::Json split_summaries = io::Json::object();
  for (size_t si = 0; si < splits.size(); ++si) {
    const CocoSplit& s = splits[si];
    report_file(s, train, report);
    for (size_t ii = 0; ii < s.images.size(); ++ii) {
      const DecodedInfo& d = decoded[si][ii];
      check_image(s, s.images[ii], d, report);
      images.add(d);
      fingerprints.push_back({s.images[ii].path, s.name, d.bytes, d.content_hash});
    }
    split_summaries[s.name] = split_summary(s);
  }
  summarize(train, std::move(split_summaries), images, report.summary);
  report_duplicate_images(fingerprints, report);
  return report;
}

}  // namespace em::data
