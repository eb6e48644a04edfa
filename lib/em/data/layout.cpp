#include "em/data/layout.hpp"

#include "em/core/error.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace em::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSplits[] = {"train", "validation", "test"};
// Larger JSON files are judged by their name only: a big COCO file is read once, by the dataset reader.
constexpr std::uintmax_t kMaxJsonBytes = std::uintmax_t{64} << 20;
// The seed's segmentation folders: never labels, even when no JSON file lists them (a split file gone missing).
const std::set<std::string> kNotLabelFolders = {"images", "annotations"};

// What each algorithm's layout shows in the folder, in the order found (paths relative to DIR).
using Clues = std::map<Algo, std::vector<std::string>>;

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (!item.empty() && std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// A folder's entries without hidden ones (".DS_Store"), sorted by name.
std::vector<fs::directory_entry> visible_entries(const fs::path& dir) {
  std::vector<fs::directory_entry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind('.', 0) != 0) out.push_back(*it);
  std::sort(out.begin(), out.end());
  return out;
}

bool holds_images(const fs::path& folder) {
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && has_image_extension(it->path().string())) return true;
  return false;
}

// The first folder of a relative path ("images/0001.png" -> "images"); "" for a file beside the JSON file.
std::string top_folder(const io::Json& path) {
  if (!path.is_string()) return "";
  const std::string p = path.get<std::string>();
  const auto slash = p.find('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

// A JSON document's layout — a COCO object (detection) or a list of {"image", "seg_map"} (segmentation) — and the
// folders its paths lie in.
struct JsonKind {
  std::optional<Algo> algo;
  std::vector<std::string> folders;
};

bool is_segmentation_entry(const io::Json& e) {
  return e.is_object() && e.contains("image") && e.contains("seg_map");
}

JsonKind kind_of(const io::Json& j) {
  JsonKind kind;
  if (j.is_object() && j.contains("images") && j.contains("annotations") && j.contains("categories")) {
    kind.algo = Algo::detection;
    if (j.at("images").is_array())
      for (const auto& image : j.at("images"))
        if (image.is_object() && image.contains("file_name"))
          add_unique(kind.folders, top_folder(image["file_name"]));
  } else if (j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), is_segmentation_entry)) {
    kind.algo = Algo::segmentation;
    for (const auto& e : j) {
      add_unique(kind.folders, top_folder(e["image"]));
      add_unique(kind.folders, top_folder(e["seg_map"]));
    }
  }
  return kind;
}

// The layout a JSON file's name belongs to when its content tells nothing (too large, invalid, an empty list).
std::optional<Algo> kind_by_name(const std::string& name, const std::string& split) {
  if (name == "_annotations.coco.json") return Algo::detection;
  if (name == split + ".json" || (split == "test" && name == "train.json")) return Algo::segmentation;
  return std::nullopt;
}

JsonKind read_kind(const fs::directory_entry& file) {
  std::error_code ec;
  const std::uintmax_t size = file.file_size(ec);
  if (ec || size > kMaxJsonBytes) return {};
  try {
    const auto j = io::try_parse_json(io::read_file(file.path().string()));
    return j ? kind_of(*j) : JsonKind{};
  } catch (const std::exception&) {
    return {};  // unreadable: the dataset's own reader names the reason
  }
}

// One JSON file of a split folder: its layout, its file and the folders it refers to (which are then not labels).
void json_clues(const fs::directory_entry& file, const std::string& split, Clues& clues,
                std::set<std::string>& referenced) {
  const std::string name = file.path().filename().string();
  JsonKind kind = read_kind(file);
  if (!kind.algo) kind.algo = kind_by_name(name, split);
  if (!kind.algo) return;
  std::error_code ec;
  for (const auto& folder : kind.folders) {
    referenced.insert(folder);
    if (fs::is_directory(file.path().parent_path() / folder, ec)) add_unique(clues[*kind.algo], split + "/" + folder);
  }
  add_unique(clues[*kind.algo], split + "/" + name);
}

Clues split_clues(const fs::path& dir, const std::string& split) {
  Clues clues;
  std::set<std::string> referenced;
  const std::vector<fs::directory_entry> entries = visible_entries(dir / split);
  std::error_code ec;
  for (const auto& e : entries)
    if (e.is_regular_file(ec) && e.path().extension() == ".json") json_clues(e, split, clues, referenced);
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string();
    if (e.is_directory(ec) && !referenced.count(name) && !kNotLabelFolders.count(name) && holds_images(e.path()))
      clues[Algo::classification].push_back(split + "/" + name);
  }
  return clues;
}

std::string evidence_text(const LayoutGuess& guess) {
  const auto& e = guess.evidence;
  constexpr size_t kShown = 4;
  std::string list = e.size() <= kShown ? fmt::format("{}", fmt::join(e, ", "))
                                        : fmt::format("{}, ... ({} in all)",
                                                      fmt::join(e.begin(), e.begin() + kShown - 1, ", "), e.size());
  return guess.algo == Algo::classification ? "label folders " + list : list;
}

}  // namespace

std::optional<LayoutGuess> guess_layout(const std::string& dir) {
  std::error_code ec;
  for (const char* split : kSplits) {
    if (!fs::is_directory(fs::path(dir) / split, ec)) continue;
    Clues clues = split_clues(dir, split);
    // The class names file counts when the split itself shows no segmentation list (a split file gone missing).
    for (const char* name : {"id2label.json", "id2lable.json"})
      if (!clues.count(Algo::segmentation) && fs::is_regular_file(fs::path(dir) / "resources" / name, ec))
        clues[Algo::segmentation].push_back(std::string("resources/") + name);
    if (clues.size() != 1) return std::nullopt;  // the first split decides: no layout, or the signs of two
    return LayoutGuess{clues.begin()->first, clues.begin()->second};
  }
  return std::nullopt;
}

std::optional<std::string> layout_mismatch(Algo algo, const std::string& dir) {
  const std::optional<LayoutGuess> guess = guess_layout(dir);
  if (!guess || guess->algo == algo) return std::nullopt;
  return fmt::format("looks like a {} dataset ({}), not {}: use --algo {}", algo_name(guess->algo),
                     evidence_text(*guess), algo_name(algo), algo_name(guess->algo));
}

void require_layout(Algo algo, const std::string& dir) {
  if (auto reason = layout_mismatch(algo, dir)) throw Error(dir, *reason);
}

}  // namespace em::data
