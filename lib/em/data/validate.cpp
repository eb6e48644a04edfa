#include "em/data/validate.hpp"

#include "em/core/error.hpp"
#include "em/core/hash.hpp"
#include "em/core/parallel.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/data/segmentation_dataset.hpp"
#include "em/data/coco_dataset.hpp"
#include "em/data/duplicates.hpp"
#include "em/data/layout.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace {

io::Json problems_json(const std::vector<Problem>& problems) {
  io::Json out = io::Json::array();
  for (const auto& p : problems) out.push_back({{"path", p.path}, {"reason", p.reason}});
  return out;
}

}  // namespace

io::Json ValidationReport::to_json() const {
  return {{"algo", algo},
          {"dir", dir},
          {"valid", ok()},
          {"problems", problems_json(problems)},
          {"warnings", problems_json(warnings)},
          {"summary", summary}};
}

std::string reason_about(const std::exception& error, const std::string& path) {
  const auto* e = dynamic_cast<const Error*>(&error);
  return e && e->path() == path ? e->reason() : error.what();
}

io::Json ImageSizeCounts::to_json() const {
  int min_w = counts_.begin()->first.first, max_w = min_w, min_h = counts_.begin()->first.second, max_h = min_h;
  for (const auto& [size, n] : counts_) {
    min_w = std::min(min_w, size.first), max_w = std::max(max_w, size.first);
    min_h = std::min(min_h, size.second), max_h = std::max(max_h, size.second);
  }
  auto common = std::max_element(counts_.begin(), counts_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  return {{"width", {{"min", min_w}, {"max", max_w}}},
          {"height", {{"min", min_h}, {"max", max_h}}},
          {"most_common",
           {{"width", common->first.first}, {"height", common->first.second}, {"images", common->second}}},
          {"distinct_sizes", counts_.size()}};
}

DecodedInfo decode_file(const std::string& path) {
  DecodedInfo r;
  try {
    const std::string bytes = io::read_file(path);
    r.bytes = bytes.size(), r.content_hash = fnv1a_64(bytes);
    const io::ImageInfo info = io::image_info(bytes, path);
    r.width = info.width, r.height = info.height, r.channels = info.channels, r.format = info.format;
    io::decode_image(bytes, path, info.channels);
  } catch (const std::exception& e) {
    r.error = reason_about(e, path);
  }
  return r;
}

std::vector<DecodedInfo> decode_all(const std::vector<std::string>& paths, int threads) {
  std::vector<DecodedInfo> results(paths.size());
  parallel_for(paths.size(), {threads, "decode", "image", 1000},
               [&](std::size_t i, std::size_t) { results[i] = decode_file(paths[i]); });
  return results;
}

namespace {
// Each algorithm's validator, by the Algo of core/algo.cpp's table.
struct ValidatorRow {
  Algo algo;
  ValidationReport (*validate)(const std::string& dir, int threads);
};
constexpr ValidatorRow kValidators[] = {
    {Algo::classification, validate_classification},
    {Algo::segmentation, validate_segmentation},
    {Algo::detection, validate_detection},
};
static_assert(one_row_per_algo(kValidators), "kValidators: one validator per algorithm, in enum order");
}  // namespace

ValidationReport validate_dataset(Algo algo, const std::string& dir, int threads) {
  // Another algorithm's folder may pass this one's checks (a segmentation split's images/ and annotations/ read as
  // two labels): then that is the one problem, and nothing is decoded.
  if (auto mismatch = layout_mismatch(algo, dir)) {
    ValidationReport report = begin_report(algo, dir);
    report.problems.push_back({dir, *mismatch});
    return report;
  }
  return kValidators[index_of(algo)].validate(dir, threads);
}

ValidationReport begin_report(Algo algo, const std::string& dir) {
  ValidationReport report;
  report.algo = algo_name(algo);
  report.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    report.problems.push_back(
        {dir, fmt::format("no such dataset folder (expected {})", algo_info(algo).dataset_layout)});
  return report;
}

namespace {

constexpr const char* kClassificationSplits[] = {"train", "validation", "test"};

// The split folders: a missing train or validation split, a split without images. `labels` = train's folders.
std::map<std::string, SplitListing> list_classification_splits(const std::string& dir,
                                                               std::vector<std::string>& labels,
                                                               ValidationReport& report) {
  std::map<std::string, SplitListing> listings;
  for (const std::string split : kClassificationSplits) {
    SplitListing listing = list_classification_split(dir, split);
    if (!listing.exists) {
      if (split != "test")
        report.problems.push_back({listing.dir, fmt::format("missing split folder (expected {}/{{label}}/IMAGE)",
                                                            listing.dir)});
      continue;
    }
    if (listing.num_images() == 0)
      report.problems.push_back({listing.dir, listing.folders.empty() ? "no label folders, no images"
                                                                      : "no images in any label folder"});
    if (split == "train")
      for (const auto& f : listing.folders) labels.push_back(f.name);
    listings.emplace(split, std::move(listing));
  }
  return listings;
}

struct ClassificationImage {
  std::string path, split, label;
};

// One split's label folders (a label train lacks, an empty folder), stray images and ignored files, in folder
// order; its images are appended to `images`.
void check_label_folders(const std::string& split, const SplitListing& listing,
                         const std::vector<std::string>& labels, bool has_train, ValidationReport& report,
                         std::vector<ClassificationImage>& images) {
  const std::set<std::string> train_labels(labels.begin(), labels.end());
  for (const auto& f : listing.folders) {
    const std::string folder = listing.dir + "/" + f.name;
    // Without a train split there is nothing to compare labels with (already reported).
    if (split != "train" && has_train && !train_labels.count(f.name))
      report.problems.push_back(
          {folder, fmt::format("label \"{}\" is not a train label (train has: {})", f.name, fmt::join(labels, ", "))});
    // A train label without images can never be learnt; a validation label without images is just not scored.
    if (f.images.empty() && split == "train")
      report.problems.push_back({folder, "empty label folder (no images)"});
    else if (f.images.empty())
      report.warnings.push_back({folder, "empty label folder (no images; this label is not evaluated here)"});
    for (const auto& p : f.images) images.push_back({p, split, f.name});
  }
  for (const auto& p : listing.stray_images)
    report.problems.push_back({p, fmt::format("image outside a label folder (expected {}/{{label}}/{})", listing.dir,
                                              fs::path(p).filename().string())});
  for (const auto& p : listing.ignored)
    report.warnings.push_back({p, "ignored: not an image file (extension) or a nested folder"});
  for (const auto& [path, reason] : listing.problems) report.problems.push_back({path, reason});
}

// What the decodable images hold, for the summary.
struct ClassificationCounts {
  std::map<std::string, std::map<std::string, int64_t>> per_label;  // split -> label -> decodable images
  ImageSizeCounts sizes;
  std::map<std::string, int64_t> channels, formats;
};

ClassificationCounts count_decoded(const std::vector<ClassificationImage>& images,
                                   const std::vector<DecodedInfo>& decoded, ValidationReport& report) {
  ClassificationCounts counts;
  for (size_t i = 0; i < images.size(); ++i) {
    const DecodedInfo& d = decoded[i];
    if (!d.error.empty()) {
      report.problems.push_back({images[i].path, d.error});
      continue;
    }
    counts.per_label[images[i].split][images[i].label] += 1;
    counts.sizes.add(d.width, d.height);
    counts.channels[std::to_string(d.channels)] += 1;
    counts.formats[d.format] += 1;
  }
  return counts;
}

void summarise_classification(const std::vector<std::string>& labels,
                              const std::map<std::string, SplitListing>& listings, ClassificationCounts& counts,
                              size_t ignored, io::Json& s) {
  s["labels"] = labels;
  s["num_labels"] = labels.size();
  io::Json splits = io::Json::object();
  for (const char* split : kClassificationSplits) {
    auto it = listings.find(split);
    if (it == listings.end()) continue;
    io::Json per_label = io::Json::object();
    int64_t total = 0;
    for (const auto& f : it->second.folders) {
      int64_t n = counts.per_label[split][f.name];
      per_label[f.name] = n;
      total += n;
    }
    splits[split] = {{"images", total}, {"per_label", per_label}};
  }
  s["splits"] = splits;
  if (!counts.sizes.empty()) {
    s["image_size"] = counts.sizes.to_json();
    s["channels"] = counts.channels;  // as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (all are read as RGB)
    s["formats"] = counts.formats;
  }
  s["ignored_files"] = ignored;
}

}  // namespace

ValidationReport validate_classification(const std::string& dir, int threads) {
  ValidationReport report = begin_report(Algo::classification, dir);
  if (!report.ok()) return report;
  std::vector<std::string> labels;
  const std::map<std::string, SplitListing> listings = list_classification_splits(dir, labels, report);

  // Structure problems first, in split and folder order; then every file that does not decode, in file order.
  std::vector<ClassificationImage> images;
  size_t ignored = 0;
  for (const char* split : kClassificationSplits) {
    auto it = listings.find(split);
    if (it == listings.end()) continue;
    check_label_folders(split, it->second, labels, listings.count("train") > 0, report, images);
    ignored += it->second.ignored.size();
  }
  std::vector<std::string> paths;
  for (const auto& image : images) paths.push_back(image.path);
  const std::vector<DecodedInfo> decoded = decode_all(paths, threads);
  ClassificationCounts counts = count_decoded(images, decoded, report);
  summarise_classification(labels, listings, counts, ignored, report.summary);
  std::vector<ImageFingerprint> fingerprints;
  for (size_t i = 0; i < images.size(); ++i)
    fingerprints.push_back({images[i].path, images[i].split, decoded[i].bytes, decoded[i].content_hash});
  report_duplicate_images(fingerprints, report);
  return report;
}

}  // namespace em::data
