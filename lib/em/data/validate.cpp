#include "em/data/validate.hpp"

#include "em/core/error.hpp"
#include "em/core/progress.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/data/segmentation_dataset.hpp"
#include "em/data/coco_dataset.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace {

// "x.png: not an image (...)" -> "not an image (...)": the report keeps path and reason apart.
std::string strip_prefix(const std::string& message, const std::string& path) {
  std::string prefix = path + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

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

std::string ValidationReport::to_text() const {
  std::string out = fmt::format("{} dataset {}\n", algo, dir);
  if (!problems.empty()) {
    out += fmt::format("problems ({}):\n", problems.size());
    for (const auto& p : problems) out += fmt::format("  {}: {}\n", p.path, p.reason);
  }
  if (!warnings.empty()) {
    out += fmt::format("warnings ({}):\n", warnings.size());
    for (const auto& p : warnings) out += fmt::format("  {}: {}\n", p.path, p.reason);
  }
  if (!summary.empty()) {
    out += "summary:\n";
    // Generic: one line per key; nested objects compact. Each algorithm's summary stays readable this way.
    for (const auto& [key, value] : summary.items()) {
      if (value.is_array() && std::all_of(value.begin(), value.end(), [](const io::Json& v) { return v.is_string(); })) {
        std::vector<std::string> items;
        for (const auto& v : value) items.push_back(v.get<std::string>());
        out += fmt::format("  {}: {}\n", key, fmt::join(items, ", "));
      } else if (value.is_string()) {
        out += fmt::format("  {}: {}\n", key, value.get<std::string>());
      } else {
        out += fmt::format("  {}: {}\n", key, io::dump_json(value));
      }
    }
  }
  out += ok() ? "valid\n" : fmt::format("invalid: {} problem(s)\n", problems.size());
  return out;
}

std::vector<DecodedInfo> decode_all(const std::vector<std::string>& paths, int threads) {
  std::vector<DecodedInfo> results(paths.size());
  if (paths.empty()) return results;
  size_t n_threads = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n_threads = std::min(n_threads, paths.size());
  std::atomic<size_t> next{0}, done{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < paths.size();) {
      DecodedInfo& r = results[i];
      try {
        std::string bytes = io::read_file(paths[i]);
        io::ImageInfo info = io::image_info(bytes, paths[i]);
        r.width = info.width, r.height = info.height, r.channels = info.channels, r.format = info.format;
        io::decode_image(bytes, paths[i], info.channels);  // the pixels, not just the header: catches truncation
      } catch (const Error& e) {
        r.error = strip_prefix(e.what(), paths[i]);
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n_threads; ++t) pool.emplace_back(work);
  if (paths.size() >= 1000) {
    Progress progress("decode", static_cast<int64_t>(paths.size()), "image");
    while (done.load() < paths.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      progress.update(static_cast<int64_t>(done.load()));
    }
    progress.finish();
  }
  for (auto& t : pool) t.join();
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
  return kValidators[index_of(algo)].validate(dir, threads);
}

ValidationReport begin_report(const std::string& algo, const std::string& dir, const std::string& expected_layout) {
  ValidationReport report;
  report.algo = algo;
  report.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    report.problems.push_back({dir, fmt::format("no such dataset folder (expected {})", expected_layout)});
  return report;
}

ValidationReport validate_classification(const std::string& dir, int threads) {
  ValidationReport report = begin_report("classification", dir, "DIR/train/{label}/IMAGE");
  if (!report.ok()) return report;

  std::vector<std::string> labels;
  std::map<std::string, SplitListing> listings;
  for (const char* split : {"train", "validation", "test"}) {
    SplitListing listing = list_classification_split(dir, split);
    bool optional = std::string(split) == "test";
    if (!listing.exists) {
      if (!optional)
        report.problems.push_back({listing.dir, fmt::format("missing split folder (expected {}/{{label}}/IMAGE)",
                                                            listing.dir)});
      continue;
    }
    if (listing.num_images() == 0)
      report.problems.push_back({listing.dir, listing.folders.empty() ? "no label folders, no images"
                                                                      : "no images in any label folder"});
    if (std::string(split) == "train")
      for (const auto& f : listing.folders) labels.push_back(f.name);
    listings.emplace(split, std::move(listing));
  }

  // Structure problems first, in split and folder order; then every file that does not decode, in file order.
  std::vector<std::string> files;
  std::vector<std::pair<std::string, std::string>> file_split_label;  // parallel to files
  std::set<std::string> train_labels(labels.begin(), labels.end());
  size_t ignored = 0;
  for (const char* split : {"train", "validation", "test"}) {
    auto it = listings.find(split);
    if (it == listings.end()) continue;
    const SplitListing& listing = it->second;
    for (const auto& f : listing.folders) {
      std::string folder = listing.dir + "/" + f.name;
      if (std::string(split) != "train" && !listings.count("train")) {
        // no train split: nothing to compare labels with (already reported)
      } else if (std::string(split) != "train" && !train_labels.count(f.name)) {
        report.problems.push_back(
            {folder, fmt::format("label \"{}\" is not a train label (train has: {})", f.name, fmt::join(labels, ", "))});
      }
      // A train label without images can never be learnt; a validation label without images is just not scored.
      if (f.images.empty() && std::string(split) == "train")
        report.problems.push_back({folder, "empty label folder (no images)"});
      else if (f.images.empty())
        report.warnings.push_back({folder, "empty label folder (no images; this label is not evaluated here)"});
      for (const auto& p : f.images) {
        files.push_back(p);
        file_split_label.emplace_back(split, f.name);
      }
    }
    for (const auto& p : listing.stray_images)
      report.problems.push_back({p, fmt::format("image outside a label folder (expected {}/{{label}}/{})", listing.dir,
                                                fs::path(p).filename().string())});
    for (const auto& p : listing.ignored)
      report.warnings.push_back({p, "ignored: not an image file (extension) or a nested folder"});
    ignored += listing.ignored.size();
  }

  std::vector<DecodedInfo> decoded = decode_all(files, threads);
  std::map<std::pair<int, int>, int64_t> sizes;
  std::map<std::string, int64_t> channels, formats;
  int min_w = 0, max_w = 0, min_h = 0, max_h = 0;
  bool any = false;
  std::map<std::string, std::map<std::string, int64_t>> per_label;  // split -> label -> decodable images
  for (size_t i = 0; i < files.size(); ++i) {
    const DecodedInfo& d = decoded[i];
    if (!d.error.empty()) {
      report.problems.push_back({files[i], d.error});
      continue;
    }
    per_label[file_split_label[i].first][file_split_label[i].second] += 1;
    sizes[{d.width, d.height}] += 1;
    channels[std::to_string(d.channels)] += 1;
    formats[d.format] += 1;
    if (!any) min_w = max_w = d.width, min_h = max_h = d.height, any = true;
    min_w = std::min(min_w, d.width), max_w = std::max(max_w, d.width);
    min_h = std::min(min_h, d.height), max_h = std::max(max_h, d.height);
  }

  io::Json& s = report.summary;
  s["labels"] = labels;
  s["num_labels"] = labels.size();
  io::Json splits = io::Json::object();
  for (const char* split : {"train", "validation", "test"}) {
    auto it = listings.find(split);
    if (it == listings.end()) continue;
    io::Json counts = io::Json::object();
    int64_t total = 0;
    for (const auto& f : it->second.folders) {
      int64_t n = per_label[split][f.name];
      counts[f.name] = n;
      total += n;
    }
    splits[split] = {{"images", total}, {"per_label", counts}};
  }
  s["splits"] = splits;
  if (any) {
    auto common = std::max_element(sizes.begin(), sizes.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    s["image_size"] = {{"width", {{"min", min_w}, {"max", max_w}}},
                       {"height", {{"min", min_h}, {"max", max_h}}},
                       {"most_common", {{"width", common->first.first},
                                        {"height", common->first.second},
                                        {"images", common->second}}},
                       {"distinct_sizes", sizes.size()}};
    s["channels"] = channels;  // as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (all are read as RGB)
    s["formats"] = formats;
  }
  s["ignored_files"] = ignored;
  return report;
}

}  // namespace em::data
