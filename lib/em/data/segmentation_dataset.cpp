#include "em/data/segmentation_dataset.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/parallel.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/data/duplicates.hpp"
#include "em/data/split.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace {

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


// Colour type and bit depth from a PNG's IHDR chunk; {-1, -1} when the bytes are not a PNG with one.
std::pair<int, int> png_color_type_and_depth(std::string_view b) {
  if (b.size() < 26 || b.substr(0, 8) != std::string_view("\x89PNG\r\n\x1a\n", 8) || b.substr(12, 4) != "IHDR")
    return {-1, -1};
  return {static_cast<uint8_t>(b[25]), static_cast<uint8_t>(b[24])};
}

std::string values_text(const std::vector<int>& values) {
  const auto n = static_cast<std::ptrdiff_t>(std::min<size_t>(values.size(), 16));
  std::vector<int> shown(values.begin(), values.begin() + n);
  return fmt::format("{}{}", fmt::join(shown, ", "), values.size() > shown.size() ? ", ..." : "");
}

// "" when every pixel of `label_map` is a label id or 255, else the values and how many pixels hold them.
std::string unknown_values_reason(const io::Image& label_map, int64_t num_labels) {
  const std::vector<int> values = unknown_label_values(label_map, num_labels);
  if (values.empty()) return "";
  int64_t pixels = 0;
  for (uint8_t v : label_map.pixels) pixels += (v >= num_labels && v != kIgnoreLabel);
  return fmt::format("pixel values that are neither a label id (0..{}) nor 255 (ignore): {} ({} pixels)",
                     num_labels - 1, values_text(values), pixels);
}

std::string size_mismatch_reason(const io::Image& label_map, const std::string& image, int width, int height) {
  return fmt::format("seg map is {}x{} but its image {} is {}x{}", label_map.width, label_map.height, image, width,
                     height);
}

// "" when 8-bit label maps can hold every id of `labels`, else why not.

const char* kSplits[] = {"train", "validation", "test"};

// ------------------------------------------------------------------------------------------ split files

// DIR/split/split.json, for test else the misspelt test/train.json (with a warning); "" (a problem) when missing.
fs::path find_split_file(const fs::path& root, const std::string& split, SegmentationSplitListing& listing) {
  std::error_code ec;
  fs::path file = root / (split + ".json");
  if (!fs::exists(file, ec) && split == "test" && fs::exists(root / "train.json", ec)) {
    file = root / "train.json";
    listing.warnings.push_back({file.string(), "the seed's name for test/test.json; accepted"});
  }
  listing.split_file = file.string();
  if (fs::exists(file, ec)) return file;
  listing.problems.push_back({file.string(), fmt::format("missing: the split's list of {{\"image\", \"seg_map\"}} "
                                                         "entries{}",
                                                         split == "test" ? " (test.json, or the seed's train.json)"
                                                                         : "")});
  return {};
}

// The split file's entries: a JSON array, else null with the problem (unreadable, invalid JSON with the entry it
// fails in, not an array).
io::Json read_split_entries(const std::string& file, SegmentationSplitListing& listing) {
  std::string text;
  try {
    text = io::read_file(file);
  } catch (const Error& e) {
    listing.problems.push_back({file, reason_about(e, file)});
    return nullptr;
  }
  io::Json entries;
  try {
    entries = io::parse_json_or_throw(text, file);
  } catch (const Error& e) {
    listing.problems.push_back({file, reason_about(e, file)});
    return nullptr;
  } catch (const nlohmann::json::parse_error& e) {
    int64_t entry = entry_at(text, e.byte > 0 ? e.byte - 1 : 0);
    listing.problems.push_back({file, fmt::format("invalid JSON: {}{}", io::parse_error_text(e),
                                                  entry >= 0 ? fmt::format(" (in entry {})", entry) : std::string())});
    return nullptr;
  } catch (const nlohmann::json::out_of_range& e) {
    // A number past a double's range ("1e400"): nlohmann's out_of_range 406 (found by fuzz/fuzz_segmentation_split).
    listing.problems.push_back({file, fmt::format("invalid JSON: {}", io::parse_error_text(e))});
    return nullptr;
  }
  if (!entries.is_array()) {
    listing.problems.push_back({file, fmt::format("expected a JSON array of {{\"image\": PATH, \"seg_map\": PATH}} "
                                                  "objects, got {}",
                                                  entries.type_name())});
    return nullptr;
  }
  return entries;
}

// Where a split file's entries are: its folder, its path, and the listing that collects their problems.
struct SplitFile {
  fs::path root, file;
  SegmentationSplitListing& listing;

  void entry_problem(int64_t index, const std::string& reason) const {
    listing.problems.push_back({file.string(), fmt::format("entry {}: {}", index, reason)});
  }
};

// Field `field` of entry `index`: the path as listed when it names a file inside the split folder, else nothing
// (the problem recorded).
std::optional<std::string> listed_file(const io::Json& e, const char* field, int64_t index, const SplitFile& split) {
  auto it = e.find(field);
  if (it == e.end()) {
    split.entry_problem(index, fmt::format("missing field \"{}\"", field));
    return std::nullopt;
  }
  if (!it->is_string() || it->get<std::string>().empty()) {
    split.entry_problem(index, fmt::format("field \"{}\": expected a path relative to {}, got {}", field,
                                           split.listing.dir, io::dump_json(*it)));
    return std::nullopt;
  }
  const std::string rel = it->get<std::string>();
  // Listed paths stay inside the split folder: files are read from them and predictions written under the seg_map
  // names.
  if (const std::string outside = io::outside_reason(split.root, rel); !outside.empty()) {
    split.entry_problem(index, fmt::format("field \"{}\": {}", field, outside));
    return std::nullopt;
  }
  const fs::path full = split.root / rel;
  std::error_code ec;
  if (!fs::is_regular_file(full, ec)) {
    split.listing.problems.push_back(
        {full.string(), fmt::format("{} (listed as \"{}\" by entry {} of {})",
                                    fs::exists(full, ec) ? "not a file" : "no such file", field, index,
                                    split.file.filename().string())});
    return std::nullopt;
  }
  return rel;
}

// Entry `index` when it is an object whose image and seg_map both name files inside the split folder.
std::optional<SegmentationEntry> listed_entry(const io::Json& e, int64_t index, const SplitFile& split) {
  if (!e.is_object()) {
    split.entry_problem(index, fmt::format("expected an object {{\"image\": PATH, \"seg_map\": PATH}}, got {}",
                                           io::dump_json(e)));
    return std::nullopt;
  }
  const std::optional<std::string> image = listed_file(e, "image", index, split);
  const std::optional<std::string> seg_map = listed_file(e, "seg_map", index, split);
  if (!image || !seg_map) return std::nullopt;
  SegmentationEntry entry;
  entry.image = (split.root / *image).string();
  entry.seg_map = (split.root / *seg_map).string();
  entry.seg_map_rel = fs::path(*seg_map).lexically_normal().generic_string();
  entry.entry = index;
  return entry;
}

}  // namespace

SegmentationSplitListing list_segmentation_split(const std::string& dir, const std::string& split) {
  SegmentationSplitListing listing;
  const fs::path root = fs::path(dir) / split;
  listing.dir = root.string();
  std::error_code ec;
  listing.exists = fs::is_directory(root, ec);
  if (!listing.exists) return listing;
  const fs::path file = find_split_file(root, split, listing);
  if (file.empty()) return listing;
  const io::Json entries = read_split_entries(file.string(), listing);
  if (!entries.is_array()) return listing;

  listing.listed = static_cast<int64_t>(entries.size());
  const SplitFile where{root, file, listing};
  const std::string name = file.filename().string();
  std::map<std::string, int64_t> first_image, first_seg_map;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    std::optional<SegmentationEntry> entry = listed_entry(entries[i], index, where);
    if (!entry) continue;
    if (auto [it, fresh] = first_image.emplace(entry->image, index); !fresh)
      listing.warnings.push_back(
          {entry->image, fmt::format("listed twice (entries {} and {} of {})", it->second, index, name)});
    if (auto [it, fresh] = first_seg_map.emplace(entry->seg_map_rel, index); !fresh)
      listing.warnings.push_back(
          {entry->seg_map, fmt::format("seg map of two entries ({} and {} of {}); predicted maps written under its "
                                       "name overwrite each other",
                                       it->second, index, name)});
    listing.entries.push_back(std::move(*entry));
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
  if (!j.is_object()) fail_at(path.string(), "expected a JSON object {{\"0\": \"name\", ...}}");
  std::map<long, std::string> by_id;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    std::size_t used = 0;
    long id = -1;
    try {
      id = std::stol(key, &used);
    } catch (const std::exception&) {
    }
    // Label maps are 8-bit PNGs: ids 0..254, 255 = ignore. A larger id could never occur in a map, and counting
    // arrays sized by the largest id must stay small.
    if (key.empty() || used != key.size() || id < 0 || id >= kIgnoreLabel)
      fail_at(path.string(), "key \"{}\": expected a label id from 0 to {} (8-bit label maps hold the ids 0..{}, {} = "
              "ignore)", key, kIgnoreLabel - 1, kIgnoreLabel - 1, kIgnoreLabel);
    if (!it.value().is_string())
      fail_at(path.string(), "key \"{}\": expected a string label name, got {}", key, io::dump_json(it.value()));
    if (!by_id.emplace(id, it.value().get<std::string>()).second)
      fail_at(path.string(), "label id {} is given twice", id);
  }
  if (by_id.empty()) fail_at(path.string(), "no labels");
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
    fail_at((dir / "resources" / "id2label.json").string(),
            "not found (the class names, {{\"0\": \"name\", ...}}; the seed's resources/id2lable.json is accepted "
            "too)");
  if (where.misspelt)
    log::warn("{}: the seed's name for resources/id2label.json; accepted", where.path.string());
  return read_id2label(where.path);
}

}  // namespace

SegmentationDataset SegmentationDataset::scan(const std::string& dir, bool require_validation) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail_at(dir, "no such dataset folder (expected {}/train/train.json, images and annotations, see docs/datasets.md)",
            dir);
  SegmentationDataset ds;
  ds.dir = dir;
  ds.labels = dataset_labels(dir);
  for (const char* split : kSplits) {
    SegmentationSplitListing listing = list_segmentation_split(dir, split);
    const bool required = std::string(split) == "train" || (std::string(split) == "validation" && require_validation);
    if (!listing.exists) {
      if (required)
        fail_at(listing.dir, "missing split folder (expected {}/{}.json listing images and seg maps)", listing.dir,
                split);
      continue;
    }
    if (!listing.problems.empty()) {
      const Problem& p = listing.problems.front();
      fail_at(p.path, "{}{}", p.reason,
              listing.problems.size() > 1
                  ? fmt::format(" (and {} more problems; em-validate --algo segmentation {} lists them all)",
                                listing.problems.size() - 1, dir)
                  : std::string());
    }
    for (const auto& w : listing.warnings) log::warn("{}: {}", w.path, w.reason);
    if (listing.entries.empty()) fail_at(listing.split_file, "lists no images (an empty split)");
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
    fail_at(path, "label map is a palette (indexed-colour) PNG, which decodes to RGB colours, not ids; save the "
                  "indices as an 8-bit grayscale PNG (PIL: Image.fromarray(np.array(img)))");
  if (info.channels != 1)
    fail_at(path, "label map has {} channels; expected a single-channel (grayscale) PNG of label ids",
            info.channels);
  if (depth == 16)
    fail_at(path, "label map is a 16-bit PNG; expected 8 bits per pixel (ids 0..254, 255 = ignore)");
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

SegmentationSample read_segmentation_sample(const SegmentationEntry& entry, int64_t num_labels, bool reduce_labels) {
  SegmentationSample s;
  s.image = io::read_image(entry.image, 3);
  s.label_map = read_label_map(entry.seg_map);
  if (s.label_map.width != s.image.width || s.label_map.height != s.image.height)
    fail_at(entry.seg_map, "{}", size_mismatch_reason(s.label_map, entry.image, s.image.width, s.image.height));
  // Before a reduction the map holds one value more: 0 (the background that becomes 255) and each id + 1.
  const int64_t raw_values = reduce_labels ? num_labels + 1 : num_labels;
  if (const std::string reason = unknown_values_reason(s.label_map, raw_values); !reason.empty())
    fail_at(entry.seg_map, "{}{}", reason,
            reduce_labels ? " (the model's processor says do_reduce_labels: 0 is the background, id i is i + 1)" : "");
  if (reduce_labels) reduce_label_map(s.label_map);
  return s;
}

void reduce_label_map(io::Image& label_map) {
  for (uint8_t& v : label_map.pixels) {
    v = v == 0 ? 254 : static_cast<uint8_t>(v - 1);  // 0 -> 255 - 1, as HF's (label - 1) on 255
    if (v == 254) v = 255;
  }
}

// ------------------------------------------------------------------------------------------ em-validate

namespace {

using Histogram = std::array<int64_t, 256>;  // pixels per value

// id2label.json as em-validate sees it: the names, and whether pixel values can be checked against them.
struct CheckedLabels {
  std::vector<std::string> names;
  bool known = false;
};

CheckedLabels check_id2label(const std::string& dir, ValidationReport& report) {
  CheckedLabels labels;
  const Id2LabelLocation where = find_id2label(dir);
  if (where.path.empty()) {
    report.problems.push_back({(fs::path(dir) / "resources" / "id2label.json").string(),
                               "missing: the class names, {\"0\": \"name\", ...} (the seed's id2lable.json is "
                               "accepted too)"});
    return labels;
  }
  const std::string path = where.path.string();
  if (where.misspelt) report.warnings.push_back({path, "the seed's name for resources/id2label.json; accepted"});
  try {
    labels.names = read_id2label(where.path);
  } catch (const Error& e) {
    report.problems.push_back({path, reason_about(e, path)});
    return labels;
  }
  labels.known = true;
  return labels;
}

// Every split's structure problems (list_segmentation_split's, a missing train or validation, an empty split).
std::vector<SegmentationSplitListing> list_segmentation_splits(const std::string& dir, ValidationReport& report) {
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
  return listings;
}

// What checking one entry found; a usable entry has no problem.
struct EntryCheck {
  std::vector<Problem> problems, warnings;
  int width = 0, height = 0;
  bool ok = false;
  uint64_t image_bytes = 0, image_hash = 0;  // for the duplicate check
};

// read_segmentation_sample's checks, reported instead of thrown; a usable entry's pixels are added to `histogram`.
EntryCheck check_entry(const SegmentationEntry& e, const CheckedLabels& labels, Histogram& histogram) {
  EntryCheck r;
  const DecodedInfo image = decode_file(e.image);
  r.image_bytes = image.bytes, r.image_hash = image.content_hash;
  if (!image.error.empty()) r.problems.push_back({e.image, image.error});
  io::Image map;
  bool map_ok = false;
  try {
    const std::string bytes = io::read_file(e.seg_map);
    map = decode_label_map(bytes, e.seg_map);
    map_ok = true;
    if (io::sniff_image_format(bytes) != "PNG")
      r.warnings.push_back({e.seg_map, "seg map is not a PNG: a lossy format (JPEG) alters label ids at edges"});
  } catch (const Error& err) {
    r.problems.push_back({e.seg_map, reason_about(err, e.seg_map)});
  }
  if (image.error.empty() && map_ok && (map.width != image.width || map.height != image.height))
    r.problems.push_back({e.seg_map, size_mismatch_reason(map, e.image, image.width, image.height)});
  if (map_ok && labels.known) {
    const std::string unknown = unknown_values_reason(map, static_cast<int64_t>(labels.names.size()));
    if (!unknown.empty()) r.problems.push_back({e.seg_map, unknown});
  }
  r.ok = r.problems.empty();
  if (r.ok) {
    r.width = image.width, r.height = image.height;
    for (uint8_t v : map.pixels) ++histogram[v];
  }
  return r;
}

// What the usable entries hold, per split (kSplits order).
struct SegmentationCounts {
  std::array<Histogram, 3> pixels{};
  std::array<int64_t, 3> usable{};
  ImageSizeCounts sizes;
  std::vector<ImageFingerprint> images;  // every listed image (the seg maps may well repeat)
};

// Every listed entry checked on `threads` threads; problems and warnings in entry order.
SegmentationCounts check_entries(const std::vector<SegmentationSplitListing>& listings, const CheckedLabels& labels,
                                 int threads, ValidationReport& report) {
  struct Job {
    size_t split;
    const SegmentationEntry* entry;
  };
  std::vector<Job> jobs;
  for (size_t s = 0; s < listings.size(); ++s)
    for (const auto& e : listings[s].entries) jobs.push_back({s, &e});
  std::vector<EntryCheck> results(jobs.size());
  std::vector<std::array<Histogram, 3>> histograms(parallel_workers(jobs.size(), threads));  // per worker
  parallel_for(jobs.size(), {threads, "validate", "entry", 1000}, [&](size_t i, size_t worker) {
    results[i] = check_entry(*jobs[i].entry, labels, histograms[worker][jobs[i].split]);
  });

  SegmentationCounts counts;
  for (size_t i = 0; i < jobs.size(); ++i)
    counts.images.push_back({jobs[i].entry->image, kSplits[jobs[i].split], results[i].image_bytes,
                             results[i].image_hash});
  for (const auto& per_worker : histograms)
    for (size_t s = 0; s < 3; ++s)
      for (size_t v = 0; v < 256; ++v) counts.pixels[s][v] += per_worker[s][v];
  for (size_t i = 0; i < jobs.size(); ++i) {
    EntryCheck& r = results[i];
    for (auto& p : r.problems) report.problems.push_back(std::move(p));
    for (auto& w : r.warnings) report.warnings.push_back(std::move(w));
    if (!r.ok) continue;
    ++counts.usable[jobs[i].split];
    counts.sizes.add(r.width, r.height);
  }
  return counts;
}

// {"entries", "images", "pixels", "pixel_frequency", "pixel_counts"} of one split: per label and for 255.
io::Json split_summary(const SegmentationSplitListing& listing, int64_t usable, const Histogram& histogram,
                       const std::vector<std::string>& labels) {
  int64_t pixels = 0;
  for (int64_t c : histogram) pixels += c;
  io::Json counts = io::Json::object(), frequency = io::Json::object();
  auto add = [&](const std::string& name, int64_t count) {
    counts[name] = count;
    frequency[name] = pixels > 0 ? static_cast<double>(count) / static_cast<double>(pixels) : 0.0;
  };
  // Ids past 254 are reported as a problem; no 8-bit pixel holds them.
  for (size_t c = 0; c < labels.size(); ++c) add(labels[c], c < histogram.size() ? histogram[c] : 0);
  add("255 (ignore)", histogram[kIgnoreLabel]);
  return {{"entries", listing.listed},
          {"images", usable},
          {"pixels", pixels},
          {"pixel_frequency", frequency},
          {"pixel_counts", counts}};
}

void summarise_segmentation(const std::vector<SegmentationSplitListing>& listings, const CheckedLabels& labels,
                            const SegmentationCounts& counts, ValidationReport& report) {
  io::Json& s = report.summary;
  s["labels"] = labels.names;
  s["num_labels"] = labels.names.size();
  io::Json splits = io::Json::object();
  for (size_t sp = 0; sp < listings.size(); ++sp)
    if (listings[sp].exists)
      splits[kSplits[sp]] = split_summary(listings[sp], counts.usable[sp], counts.pixels[sp], labels.names);
  s["splits"] = splits;
  if (!counts.sizes.empty()) s["image_size"] = counts.sizes.to_json();
  // A class without a train pixel can never be predicted: worth knowing before a long run.
  if (labels.known && counts.usable[0] > 0)
    for (size_t c = 0; c < labels.names.size(); ++c)
      if (counts.pixels[0][c] == 0)
        report.warnings.push_back({listings[0].split_file, fmt::format("class {} \"{}\" has no pixel in train: the "
                                                                       "model cannot learn it",
                                                                       c, labels.names[c])});
}

}  // namespace

ValidationReport validate_segmentation(const std::string& dir, int threads) {
  ValidationReport report = begin_report(Algo::segmentation, dir);
  if (!report.ok()) return report;
  // Labels first: the pixel-value check needs them.
  const CheckedLabels labels = check_id2label(dir, report);
  const std::vector<SegmentationSplitListing> listings = list_segmentation_splits(dir, report);
  const SegmentationCounts counts = check_entries(listings, labels, threads, report);
  summarise_segmentation(listings, labels, counts, report);
  report_duplicate_images(counts.images, report);
  return report;
}

}  // namespace em::data
