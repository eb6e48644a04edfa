#include "em/metrics/segmentation_io.hpp"

#include <map>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/segmentation_dataset.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"

namespace em::metrics {
namespace fs = std::filesystem;

namespace {

// The first existing candidate; the others are the platform guide's misspellings, accepted with a warning.
fs::path first_existing(const std::vector<fs::path>& candidates, const std::string& what) {
  std::error_code ec;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (fs::exists(candidates[i], ec)) {
      if (i > 0)
        log::warn("{} not found; using {} (the seed's spelling)", candidates[0].string(), candidates[i].string());
      return candidates[i];
    }
  }
  fail("{}: not found ({})", candidates[0].string(), what);
}

}  // namespace

SegmentationScore score_segmentation_folders(const fs::path& truth_split_dir, const fs::path& pred_dir,
                                             const SegmentationScoreOptions& options) {
  fs::path split_dir = fs::absolute(truth_split_dir).lexically_normal();
  if (split_dir.filename().empty()) split_dir = split_dir.parent_path();
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec)) fail("{}: not a folder", truth_split_dir.string());
  if (!fs::is_directory(pred_dir, ec)) fail("{}: not a folder", pred_dir.string());
  const std::string split = split_dir.filename().string();
  const fs::path dataset = split_dir.parent_path();

  std::vector<fs::path> split_files = {split_dir / (split + ".json")};
  if (split == "test") split_files.push_back(split_dir / "train.json");
  const fs::path split_file = first_existing(split_files,
                                             "the split's list of {\"image\", \"seg_map\"} entries; --truth names "
                                             "a split folder such as DIR/validation");
  const fs::path id2label_file =
      first_existing({dataset / "resources" / "id2label.json", dataset / "resources" / "id2lable.json"},
                     "the class names, {\"0\": \"name\", ...}");

  SegmentationScore score;
  score.labels = data::read_id2label(id2label_file);
  SegmentationAccumulator acc(static_cast<int>(score.labels.size()), options.ignore_index, options.reduce_labels);

  const io::Json entries = io::read_json_file(split_file.string());
  if (!entries.is_array()) fail("{}: expected a JSON array of {{\"image\", \"seg_map\"}} objects", split_file.string());
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = fmt::format("{}: entry {}", split_file.string(), i);
    const io::Json& seg = io::require_field(entries[i], "seg_map", where);
    if (!seg.is_string()) fail("{}: field \"seg_map\": expected a string path", where);
    const std::string rel = seg.get<std::string>();
    const fs::path pred_path = pred_dir / rel;
    if (!fs::exists(pred_path, ec)) {
      missing.push_back(pred_path.string());
      continue;
    }
    const io::Image truth = data::read_label_map((split_dir / rel).string());
    const io::Image pred = data::read_label_map(pred_path.string());
    if (pred.width != truth.width || pred.height != truth.height)
      fail("{}: prediction is {}x{} but the truth {} is {}x{}", pred_path.string(), pred.width, pred.height,
           (split_dir / rel).string(), truth.width, truth.height);
    acc.add(pred.pixels.data(), truth.pixels.data(), truth.pixels.size());
    ++score.num_scored;
  }
  score.num_images = entries.size();
  if (score.num_images == 0) fail("{}: the split lists no images", split_file.string());
  if (!missing.empty()) {
    std::string some;
    for (std::size_t i = 0; i < missing.size() && i < 3; ++i) some += (i ? ", " : "") + missing[i];
    if (missing.size() > 3) some += ", ...";
    if (!options.allow_missing)
      fail("{}: {} of {} predicted label maps are missing: {} (--allow_missing scores only the present ones)",
           pred_dir.string(), missing.size(), score.num_images, some);
    log::warn("{}: {} of {} predicted label maps are missing and not scored: {}", pred_dir.string(), missing.size(),
              score.num_images, some);
    if (score.num_scored == 0) fail("{}: no predicted label map found; nothing to score", pred_dir.string());
  }
  score.metrics = acc.compute();
  return score;
}

}  // namespace em::metrics
