#include "em/data/duplicates.hpp"

#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

namespace em::data {
namespace {

using ContentKey = std::pair<uint64_t, uint64_t>;  // (bytes, content_hash)

// One split's distinct images by content, in file order, each with the first path that has it.
struct SplitContents {
  std::string name;
  std::vector<std::pair<ContentKey, std::string>> order;
  std::map<ContentKey, std::string> first;
};

SplitContents& split_named(std::vector<SplitContents>& splits, const std::string& name) {
  for (auto& s : splits)
    if (s.name == name) return s;
  splits.push_back({name, {}, {}});
  return splits.back();
}

// Each split's distinct images; a copy within a split is warned about here and counted in `counts`.
std::vector<SplitContents> split_contents(const std::vector<ImageFingerprint>& images, ValidationReport& report,
                                          io::Json& counts) {
  std::vector<SplitContents> splits;
  std::set<std::string> paths;
  for (const auto& image : images) {
    if (image.bytes == 0 || !paths.insert(image.path).second) continue;
    SplitContents& split = split_named(splits, image.split);
    const ContentKey key{image.bytes, image.content_hash};
    const auto [it, added] = split.first.emplace(key, image.path);
    if (added) {
      split.order.emplace_back(key, image.path);
      continue;
    }
    report.warnings.push_back(
        {image.path, fmt::format("same bytes as {}: a duplicate image within {}", it->second, split.name)});
    counts[split.name] = counts.value(split.name, 0) + 1;
  }
  return splits;
}

// What `later` shares with `earlier`: one warning when they hold the same images, else one per shared image.
void report_shared(const SplitContents& earlier, const SplitContents& later, ValidationReport& report,
                   io::Json& counts) {
  std::vector<std::pair<std::string, std::string>> shared;  // (path in later, path in earlier)
  for (const auto& [key, path] : later.order) {
    auto it = earlier.first.find(key);
    if (it != earlier.first.end()) shared.emplace_back(path, it->second);
  }
  if (shared.empty()) return;
  counts[earlier.name + " & " + later.name] = shared.size();
  if (shared.size() == earlier.first.size() && shared.size() == later.first.size()) {
    report.warnings.push_back(
        {report.dir + "/" + later.name,
         fmt::format("identical to {}/{}: the same {} image(s), by content; scores on {} say nothing about images a "
                     "model trained on {} has not seen",
                     report.dir, earlier.name, shared.size(), later.name, earlier.name)});
    return;
  }
  for (const auto& [in_later, in_earlier] : shared)
    report.warnings.push_back({in_later, fmt::format("same image as {}: leakage from {} into {} (scored on an image "
                                                     "that is also in {})",
                                                     in_earlier, earlier.name, later.name, earlier.name)});
}

}  // namespace

void report_duplicate_images(const std::vector<ImageFingerprint>& images, ValidationReport& report) {
  io::Json counts = io::Json::object();
  const std::vector<SplitContents> splits = split_contents(images, report, counts);
  for (size_t a = 0; a < splits.size(); ++a)
    for (size_t b = a + 1; b < splits.size(); ++b) report_shared(splits[a], splits[b], report, counts);
  if (!counts.empty()) report.summary["duplicate_images"] = counts;
}

}  // namespace em::data
