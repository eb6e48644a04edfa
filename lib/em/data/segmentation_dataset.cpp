#include "em/data/segmentation_dataset.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/progress.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/data/split.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace {

std::string strip_prefix(const std::string& message, const std::string& path) {
  std::string prefix = path + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

// The entry (object of the top-level array) that byte `end` of `text` falls in or after: counts the objects opened at
// depth 1, outside strings. -1 before the first one.
int64_t entry_at(const std::string& text, size_t end) {
  int64_t entries = 0;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < end && i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (c == '{' && depth == 1) ++entries;
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return entries - 1;
}

// A listed path must stay inside the split folder: predictions are written under the seg_map names.
bool escapes_folder(const std::string& rel) {
  fs::path p(rel);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return true;
  for (const auto& part : p.lexically_normal())
    if (part == "..") return true;
  return false;
}

// Colour type and bit depth from a PNG's IHDR chunk; {-1, -1} when the bytes are not a PNG with one.
std::pair<int, int> png_color_type_and_depth(std::string_view b) {
  if (b.size() < 26 || b.substr(0, 8) != std::string_view("\x89PNG\r\n\x1a\n", 8) || b.substr(12, 4) != "IHDR")
    return {-1, -1};
  return {static_cast<uint8_t>(b[25]), static_cast<uint8_t>(b[24])};
}

// Runs fn(i) for i in [0, n) on `threads` threads (0 = all cores), with a progress line for large n.
template <typename Fn>
void parallel_for(size_t n, int threads, const std::string& label, Fn fn) {
  if (n == 0) return;
  size_t n_threads = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n_threads = std::min(n_threads, n);
  std::atomic<size_t> next{0}, done{0};
  auto work = [&](size_t thread_index) {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      fn(i, thread_index);
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n_threads; ++t) pool.emplace_back(work, t);
  if (n >= 1000) {
    Progress progress(label, static_cast<int64_t>(n), "entry");
    while (done.load() < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      progress.update(static_cast<int64_t>(done.load()));
    }
    progress.finish();
  }
  for (auto& t : pool) t.join();
}

std::string values_text(const std::vector<int>& values) {
  std::vector<int> shown(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(values.size(), 16)));
  return fmt::format("{}{}", fmt::join(shown, ", "), values.size() > shown.size() ? ", ..." : "");
}

std::string unknown_values_reason(const std::vector<int>& values, int64_t num_labels, int64_t pixels) {
  return fmt::format("pixel values that are neither a label id (0..{}) nor 255 (ignore): {} ({} pixels)",
                     num_labels - 1, values_text(values), pixels);
}

const char* kSplits[] = {"train", "validation", "test"};

}  // namespace

SegmentationSplitListing list_segmentation_split(const std::string& dir, const std::string& split) {
  SegmentationSplitListing listing;
  const fs::path root = fs::path(dir) / split;
  listing.dir = root.string();
  std::error_code ec;
  listing.exists = fs::is_directory(root, ec);
  if (!listing.exists) return listing;

  fs::path file = root / (split + ".json");
  if (!fs::exists(file, ec) && split == "test" && fs::exists(root / "train.json", ec)) {
    file = root / "train.json";
    listing.warnings.push_back({file.string(), "the seed's name for test/test.json; accepted"});
  }
  listing.split_file = file.string();
  if (!fs::exists(file, ec)) {
    listing.problems.push_back({file.string(), fmt::format("missing: the split's list of {{\"image\", \"seg_map\"}} "
                                                           "entries{}",
                                                           split == "test" ? " (test.json, or the seed's train.json)"
                                                                           : "")});
    return listing;
  }

  std::string text;
  try {
    text = io::read_file(file.string());
  } catch (const Error& e) {
    listing.problems.push_back({file.string(), strip_prefix(e.what(), file.string())});
    return listing;
  }
  io::Json entries;
  try {
    entries = io::Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string msg = e.what();
    auto pos = msg.find("parse error");
    int64_t entry = entry_at(text, e.byte > 0 ? e.byte - 1 : 0);
    listing.problems.push_back(
        {file.string(), fmt::format("invalid JSON: {}{}", pos == std::string::npos ? msg : msg.substr(pos),
                                    entry >= 0 ? fmt::format(" (in entry {})", entry) : std::string())});
    return listing;
  }
  if (!entries.is_array()) {
    listing.problems.push_back({file.string(), fmt::format("expected a JSON array of {{\"image\": PATH, \"seg_map\": "
                                                           "PATH}} objects, got {}",
                                                           entries.type_name())});
    return listing;
  }
  listing.listed = static_cast<int64_t>(entries.size());
  std::map<std::string, int64_t> first_image, first_seg_map;
  for (size_t i = 0; i < entries.size(); ++i) {
    const io::Json& e = entries[i];
    const auto index = static_cast<int64_t>(i);
    auto problem = [&](const std::string& reason) {
      listing.problems.push_back({file.string(), fmt::format("entry {}: {}", index, reason)});
    };
    if (!e.is_object()) {
      problem(fmt::format("expected an object {{\"image\": PATH, \"seg_map\": PATH}}, got {}", io::dump_json(e)));
      continue;
    }
    SegmentationEntry entry;
    entry.entry = index;
    bool ok = true;
    for (const char* field : {"image", "seg_map"}) {
      auto it = e.find(field);
      if (it == e.end()) {
        problem(fmt::format("missing field \"{}\"", field));
        ok = false;
        continue;
      }
      if (!it->is_string() || it->get<std::string>().empty()) {
        problem(fmt::format("field \"{}\": expected a path relative to {}, got {}", field, listing.dir,
                            io::dump_json(*it)));
        ok = false;
        continue;
      }
      const std::string rel = it->get<std::string>();
      if (escapes_folder(rel)) {
        problem(fmt::format("field \"{}\": \"{}\" must be a path inside the split folder {} (relative, without ..)",
                            field, rel, listing.dir));
        ok = false;
        continue;
      }
      const fs::path full = root / rel;
      if (!fs::is_regular_file(full, ec)) {
        listing.problems.push_back(
            {full.string(), fmt::format("{} (listed as \"{}\" by entry {} of {})",
                                        fs::exists(full, ec) ? "not a file" : "no such file", field, index,
                                        file.filename().string())});
        ok = false;
        continue;
      }
      if (std::string(field) == "image") {
        entry.image = full.string();
      } else {
        entry.seg_map = full.string();
        entry.seg_map_rel = fs::path(rel).lexically_normal().generic_string();
      }
    }
    if (!ok) continue;
    if (auto [it, fresh] = first_image.emplace(entry.image, index); !fresh)
      listing.warnings.push_back(
          {entry.image, fmt::format("listed twice (entries {} and {} of {})", it->second, index,
                                    file.filename().string())});
    if (auto [it, fresh] = first_seg_map.emplace(entry.seg_map_rel, index); !fresh)
      listing.warnings.push_back(
          {entry.seg_map, fmt::format("seg map of two entries ({} and {} of {}); predicted maps written under its "
                                      "name overwrite each other",
                                      it->second, index, file.filename().string())});
    listing.entries.push_back(std::move(entry));
  }
  return listing;
}

Id2LabelLocation find_id2label(const fs::path& dataset_dir) {
  std::error_code ec;
  const fs::path right = dataset_dir / "resources" / "id2label.json";
  if (fs::exists(right, ec)) return {right, false};
  const fs::path seed = dataset_dir / "resources" / "id2lable.json";
  if (fs::exists(seed, ec)) return {seed, true};
  return {};
}

std::vector<std::string> read_id2label(const fs::path& path) {
  const io::Json j = io::read_json_file(path.string());
  if (!j.is_object()) fail("{}: expected a JSON object {{\"0\": \"name\", ...}}", path.string());
  std::map<long, std::string> by_id;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    std::size_t used = 0;
    long id = -1;
    try {
      id = std::stol(key, &used);
    } catch (const std::exception&) {
    }
    if (key.empty() || used != key.size() || id < 0 || id > 65535)
      fail("{}: key \"{}\": expected a label id from 0 to 65535", path.string(), key);
    if (!it.value().is_string())
      fail("{}: key \"{}\": expected a string label name, got {}", path.string(), key, io::dump_json(it.value()));
    if (!by_id.emplace(id, it.value().get<std::string>()).second)
      fail("{}: label id {} is given twice", path.string(), id);
  }
  if (by_id.empty()) fail("{}: no labels", path.string());
  std::vector<std::string> labels(static_cast<std::size_t>(by_id.rbegin()->first + 1));
  for (std::size_t id = 0; id < labels.size(); ++id) {
    auto it = by_id.find(static_cast<long>(id));
    if (it != by_id.end()) {
      labels[id] = it->second;
    } else {
      labels[id] = std::to_string(id);
      log::warn("{}: label id {} has no name; calling it \"{}\"", path.string(), id, labels[id]);
    }
  }
  return labels;
}

namespace {

// The dataset's labels for training: id2label.json read and checked against 8-bit label maps.
std::vector<std::string> dataset_labels(const fs::path& dir) {
  Id2LabelLocation where = find_id2label(dir);
  if (where.path.empty())
    fail("{}: not found (the class names, {{\"0\": \"name\", ...}}; the seed's resources/id2lable.json is accepted "
         "too)",
         (dir / "resources" / "id2label.json").string());
  if (where.misspelt)
    log::warn("{}: the seed's name for resources/id2label.json; accepted", where.path.string());
  std::vector<std::string> labels = read_id2label(where.path);
  if (labels.size() > static_cast<size_t>(kIgnoreLabel))
    fail("{}: ids up to {} but 8-bit label maps hold the ids 0..254 (255 = ignore)", where.path.string(),
         labels.size() - 1);
  return labels;
}

}  // namespace

SegmentationDataset SegmentationDataset::scan(const std::string& dir, bool require_validation) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("{}: no such dataset folder (expected {}/train/train.json, images and annotations, see docs/datasets.md)",
         dir, dir);
  SegmentationDataset ds;
  ds.dir = dir;
  ds.labels = dataset_labels(dir);
  for (const char* split : kSplits) {
    SegmentationSplitListing listing = list_segmentation_split(dir, split);
    const bool required = std::string(split) == "train" || (std::string(split) == "validation" && require_validation);
    if (!listing.exists) {
      if (required)
        fail("{}: missing split folder (expected {}/{}.json listing images and seg maps)", listing.dir, listing.dir,
             split);
      continue;
    }
    if (!listing.problems.empty()) {
      const Problem& p = listing.problems.front();
      fail("{}: {}{}", p.path, p.reason,
           listing.problems.size() > 1
               ? fmt::format(" (and {} more problems; em-validate --algo segmentation {} lists them all)",
                             listing.problems.size() - 1, dir)
               : std::string());
    }
    for (const auto& w : listing.warnings) log::warn("{}: {}", w.path, w.reason);
    if (listing.entries.empty()) fail("{}: lists no images (an empty split)", listing.split_file);
    (std::string(split) == "train" ? ds.train : std::string(split) == "validation" ? ds.validation : ds.test) =
        std::move(listing.entries);
  }
  return ds;
}

const std::vector<SegmentationEntry>& SegmentationDataset::split(const std::string& name) const {
  return pick_split(dir, name, train, validation, test, [](const auto& items) { return !items.empty(); });
}

namespace {

io::Image decode_label_map(const std::string& bytes, const std::string& path) {
  const io::ImageInfo info = io::image_info(bytes, path);
  const auto [color_type, depth] = png_color_type_and_depth(bytes);
  if (color_type == 3)
    fail("{}: label map is a palette (indexed-colour) PNG, which decodes to RGB colours, not ids; save the indices "
         "as an 8-bit grayscale PNG (PIL: Image.fromarray(np.array(img)))",
         path);
  if (info.channels != 1)
    fail("{}: label map has {} channels; expected a single-channel (grayscale) PNG of label ids", path, info.channels);
  if (depth == 16)
    fail("{}: label map is a 16-bit PNG; expected 8 bits per pixel (ids 0..254, 255 = ignore)", path);
  return io::decode_image(bytes, path, 1);
}

}  // namespace

io::Image read_label_map(const std::string& path) { return decode_label_map(io::read_file(path), path); }

std::vector<int> unknown_label_values(const io::Image& label_map, int64_t num_labels) {
  std::array<bool, 256> seen{};
  for (uint8_t v : label_map.pixels) seen[v] = true;
  std::vector<int> out;
  for (int v = 0; v < 256; ++v)
    if (seen[static_cast<size_t>(v)] && v >= num_labels && v != kIgnoreLabel) out.push_back(v);
  return out;
}

SegmentationSample read_segmentation_sample(const SegmentationEntry& entry, int64_t num_labels) {
  SegmentationSample s;
  s.image = io::read_image(entry.image, 3);
  s.label_map = read_label_map(entry.seg_map);
  if (s.label_map.width != s.image.width || s.label_map.height != s.image.height)
    fail("{}: seg map is {}x{} but its image {} is {}x{}", entry.seg_map, s.label_map.width, s.label_map.height,
         entry.image, s.image.width, s.image.height);
  std::vector<int> unknown = unknown_label_values(s.label_map, num_labels);
  if (!unknown.empty()) {
    int64_t pixels = 0;
    for (uint8_t v : s.label_map.pixels) pixels += (v >= num_labels && v != kIgnoreLabel);
    fail("{}: {}", entry.seg_map, unknown_values_reason(unknown, num_labels, pixels));
  }
  return s;
}

ValidationReport validate_segmentation(const std::string& dir, int threads) {
  ValidationReport report =
      begin_report("segmentation", dir, "DIR/train/train.json, DIR/resources/id2label.json");
  if (!report.ok()) return report;

  // Labels first: the pixel-value check needs them.
  std::vector<std::string> labels;
  bool labels_known = false;
  Id2LabelLocation where = find_id2label(dir);
  if (where.path.empty()) {
    report.problems.push_back({(fs::path(dir) / "resources" / "id2label.json").string(),
                               "missing: the class names, {\"0\": \"name\", ...} (the seed's id2lable.json is "
                               "accepted too)"});
  } else {
    if (where.misspelt)
      report.warnings.push_back({where.path.string(), "the seed's name for resources/id2label.json; accepted"});
    try {
      labels = read_id2label(where.path);
      labels_known = true;
      if (labels.size() > static_cast<size_t>(kIgnoreLabel)) {
        report.problems.push_back({where.path.string(), fmt::format("ids up to {} but 8-bit label maps hold the ids "
                                                                    "0..254 (255 = ignore)",
                                                                    labels.size() - 1)});
        labels_known = false;
      }
    } catch (const Error& e) {
      report.problems.push_back({where.path.string(), strip_prefix(e.what(), where.path.string())});
    }
  }
  const int64_t num_labels = static_cast<int64_t>(labels.size());

  std::vector<SegmentationSplitListing> listings;
  for (const char* split : kSplits) {
    SegmentationSplitListing listing = list_segmentation_split(dir, split);
    if (!listing.exists) {
      if (std::string(split) != "test")
        report.problems.push_back({listing.dir, fmt::format("missing split folder (expected {}/{}.json with images "
                                                            "and seg maps)",
                                                            listing.dir, split)});
    } else if (listing.problems.empty() && listing.listed == 0) {
      report.problems.push_back({listing.split_file, "lists no images (an empty split)"});
    }
    for (auto& p : listing.problems) report.problems.push_back(std::move(p));
    for (auto& w : listing.warnings) report.warnings.push_back(std::move(w));
    listing.problems.clear();
    listing.warnings.clear();
    listings.push_back(std::move(listing));
  }

  // Decode every listed pair. Results land in per-entry slots (problems in entry order) and per-thread histograms.
  struct Job {
    size_t split;
    const SegmentationEntry* entry;
  };
  std::vector<Job> jobs;
  for (size_t s = 0; s < listings.size(); ++s)
    for (const auto& e : listings[s].entries) jobs.push_back({s, &e});
  struct Result {
    std::vector<Problem> problems, warnings;
    int width = 0, height = 0;
    bool ok = false;
  };
  std::vector<Result> results(jobs.size());
  using Histogram = std::array<int64_t, 256>;
  const size_t n_threads = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::array<Histogram, 3>> histograms(n_threads, std::array<Histogram, 3>{});
  parallel_for(jobs.size(), static_cast<int>(n_threads), "validate", [&](size_t i, size_t thread) {
    const SegmentationEntry& e = *jobs[i].entry;
    Result& r = results[i];
    io::ImageInfo image_info;
    bool image_ok = false;
    try {
      const std::string bytes = io::read_file(e.image);
      image_info = io::image_info(bytes, e.image);
      io::decode_image(bytes, e.image, image_info.channels);  // the pixels too: catches truncation
      image_ok = true;
    } catch (const Error& err) {
      r.problems.push_back({e.image, strip_prefix(err.what(), e.image)});
    }
    io::Image map;
    bool map_ok = false;
    try {
      const std::string bytes = io::read_file(e.seg_map);
      map = decode_label_map(bytes, e.seg_map);
      map_ok = true;
      if (io::sniff_image_format(bytes) != "PNG")
        r.warnings.push_back({e.seg_map, "seg map is not a PNG: a lossy format (JPEG) alters label ids at edges"});
    } catch (const Error& err) {
      r.problems.push_back({e.seg_map, strip_prefix(err.what(), e.seg_map)});
    }
    if (image_ok && map_ok && (map.width != image_info.width || map.height != image_info.height))
      r.problems.push_back({e.seg_map, fmt::format("seg map is {}x{} but its image {} is {}x{}", map.width,
                                                   map.height, e.image, image_info.width, image_info.height)});
    if (map_ok && labels_known) {
      std::vector<int> unknown = unknown_label_values(map, num_labels);
      if (!unknown.empty()) {
        int64_t pixels = 0;
        for (uint8_t v : map.pixels) pixels += (v >= num_labels && v != kIgnoreLabel);
        r.problems.push_back({e.seg_map, unknown_values_reason(unknown, num_labels, pixels)});
      }
    }
    r.ok = r.problems.empty();
    if (r.ok) {
      r.width = image_info.width;
      r.height = image_info.height;
      Histogram& h = histograms[thread][jobs[i].split];
      for (uint8_t v : map.pixels) ++h[v];
    }
  });

  std::map<std::pair<int, int>, int64_t> sizes;
  std::array<int64_t, 3> usable{};
  int min_w = 0, max_w = 0, min_h = 0, max_h = 0;
  bool any = false;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Result& r = results[i];
    for (auto& p : r.problems) report.problems.push_back(std::move(p));
    for (auto& w : r.warnings) report.warnings.push_back(std::move(w));
    if (!r.ok) continue;
    ++usable[jobs[i].split];
    sizes[{r.width, r.height}] += 1;
    if (!any) min_w = max_w = r.width, min_h = max_h = r.height, any = true;
    min_w = std::min(min_w, r.width), max_w = std::max(max_w, r.width);
    min_h = std::min(min_h, r.height), max_h = std::max(max_h, r.height);
  }

  io::Json& s = report.summary;
  s["labels"] = labels;
  s["num_labels"] = labels.size();
  io::Json splits = io::Json::object();
  for (size_t sp = 0; sp < listings.size(); ++sp) {
    if (!listings[sp].exists) continue;
    Histogram total{};
    for (const auto& per_thread : histograms)
      for (size_t v = 0; v < 256; ++v) total[v] += per_thread[sp][v];
    int64_t pixels = 0;
    for (int64_t c : total) pixels += c;
    io::Json counts = io::Json::object(), frequency = io::Json::object();
    auto add = [&](const std::string& name, int64_t count) {
      counts[name] = count;
      frequency[name] = pixels > 0 ? static_cast<double>(count) / static_cast<double>(pixels) : 0.0;
    };
    for (size_t c = 0; c < labels.size(); ++c) add(labels[c], total[c]);
    add("255 (ignore)", total[kIgnoreLabel]);
    splits[kSplits[sp]] = {{"entries", listings[sp].listed},
                           {"images", usable[sp]},
                           {"pixels", pixels},
                           {"pixel_frequency", frequency},
                           {"pixel_counts", counts}};
    // A class without a train pixel can never be predicted: worth knowing before a long run.
    if (sp == 0 && labels_known && usable[sp] > 0)
      for (size_t c = 0; c < labels.size(); ++c)
        if (total[c] == 0)
          report.warnings.push_back({listings[sp].split_file, fmt::format("class {} \"{}\" has no pixel in train: the "
                                                                          "model cannot learn it",
                                                                          c, labels[c])});
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
  }
  return report;
}

}  // namespace em::data
