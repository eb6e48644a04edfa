#include "em/data/classification_dataset.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/split.hpp"
#include "em/io/file.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include <fmt/ranges.h>

namespace em::data {
namespace fs = std::filesystem;
namespace {

bool is_hidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<fs::directory_entry> sorted_entries(const fs::path& dir) {
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!is_hidden(it->path())) entries.push_back(*it);
  if (ec) fail_at(dir.string(), "cannot list folder ({})", ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename().string() < b.path().filename().string(); });
  return entries;
}

// A listing's first problem as the error, with how many more there are.
void fail_on_problems(const SplitListing& listing, const std::string& dir) {
  if (listing.problems.empty()) return;
  const auto& [path, reason] = listing.problems.front();
  fail_at(path, "{}{}", reason,
          listing.problems.size() > 1
              ? fmt::format(" (and {} more problems; em-validate --algo classification {} lists them all)",
                            listing.problems.size() - 1, dir)
              : std::string());
}

}  // namespace

size_t SplitListing::num_images() const {
  size_t n = 0;
  for (const auto& f : folders) n += f.images.size();
  return n;
}

bool has_image_extension(const std::string& path) {
  static const char* kExtensions[] = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp",
                                      ".gif", ".tga", ".pnm", ".pgm", ".ppm"};
  std::string ext = lower(fs::path(path).extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions), [&](const char* e) { return ext == e; });
}

SplitListing list_classification_split(const std::string& dir, const std::string& split) {
  SplitListing listing;
  fs::path root = fs::path(dir) / split;
  listing.dir = root.string();
  std::error_code ec;
  listing.exists = fs::is_directory(root, ec);
  if (!listing.exists) return listing;
  for (const auto& entry : sorted_entries(root)) {
    if (entry.is_directory(ec)) {
      SplitListing::LabelFolder folder{entry.path().filename().string(), {}};
      // The folder name is the label: it goes into config.json and every response, which hold only UTF-8.
      if (!io::is_valid_utf8(folder.name)) {
        listing.problems.emplace_back(entry.path().string(),
                                      "label folder name is not valid UTF-8 (labels are written to config.json and "
                                      "JSON responses); rename the folder");
        continue;
      }
      for (const auto& file : sorted_entries(entry.path())) {
        if (file.is_directory(ec) || !has_image_extension(file.path().string())) {
          listing.ignored.push_back(file.path().string());
        } else if (std::string outside = io::outside_reason(root, folder.name + "/" + file.path().filename().string());
                   !outside.empty()) {
          listing.problems.emplace_back(file.path().string(), std::move(outside));
        } else {
          folder.images.push_back(file.path().string());
        }
      }
      listing.folders.push_back(std::move(folder));
    } else if (has_image_extension(entry.path().string())) {
      listing.stray_images.push_back(entry.path().string());
    }
    // Other files next to the label folders (README, CSVs) are not part of the layout: ignored silently.
  }
  return listing;
}

ClassificationDataset ClassificationDataset::scan(const std::string& dir, bool require_validation) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail_at(dir, "no such dataset folder (expected {}/train/{{label}}/IMAGE, see docs/datasets.md)", dir);
  ClassificationDataset ds;
  ds.dir = dir;
  SplitListing train = list_classification_split(dir, "train");
  if (!train.exists) fail_at(train.dir, "missing split folder (expected {}/{{label}}/IMAGE)", train.dir);
  fail_on_problems(train, dir);
  if (train.num_images() == 0)
    fail_at(train.dir, "no images (expected {}/{{label}}/IMAGE with extension png, jpg, jpeg, bmp, gif, tga, pnm)",
            train.dir);
  for (const auto& f : train.folders) ds.labels.push_back(f.name);

  auto collect = [&](const SplitListing& listing, std::vector<LabeledImage>& out) {
    fail_on_problems(listing, dir);
    std::map<std::string, int64_t> index;
    for (size_t i = 0; i < ds.labels.size(); ++i) index[ds.labels[i]] = static_cast<int64_t>(i);
    for (const auto& f : listing.folders) {
      auto it = index.find(f.name);
      if (it == index.end())
        fail_at(listing.dir + "/" + f.name, "label \"{}\" is not a train label (train has: {})", f.name,
                fmt::join(ds.labels, ", "));
      if (f.images.empty()) log::warn("{}/{}: empty label folder", listing.dir, f.name);
      for (const auto& p : f.images) out.push_back({p, it->second});
    }
    if (!listing.stray_images.empty())
      log::warn("{}: {} image(s) outside a label folder ignored, e.g. {}", listing.dir, listing.stray_images.size(),
                listing.stray_images.front());
    if (!listing.ignored.empty())
      log::warn("{}: {} file(s) or folder(s) that are not images ignored, e.g. {}", listing.dir,
                listing.ignored.size(), listing.ignored.front());
    ds.ignored_files += listing.ignored.size();
  };
  collect(train, ds.train);

  SplitListing validation = list_classification_split(dir, "validation");
  if (validation.exists) {
    collect(validation, ds.validation);
    if (ds.validation.empty()) fail_at(validation.dir, "no images (expected {}/{{label}}/IMAGE)", validation.dir);
  } else if (require_validation) {
    fail_at(validation.dir,
            "missing split folder (expected {}/{{label}}/IMAGE; the seed layout needs train and validation)",
            validation.dir);
  }
  SplitListing test = list_classification_split(dir, "test");
  if (test.exists) {
    collect(test, ds.test);
    if (ds.test.empty()) fail_at(test.dir, "no images (remove the folder or add {}/{{label}}/IMAGE)", test.dir);
  }
  return ds;
}

const std::vector<LabeledImage>& ClassificationDataset::split(const std::string& name) const {
  return pick_split(dir, name, train, validation, test, [](const auto& items) { return !items.empty(); });
}

}  // namespace em::data
