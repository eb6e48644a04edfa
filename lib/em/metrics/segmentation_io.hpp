// Scoring predicted segmentation label maps (PNG files) against a segmentation dataset split, for em-metrics:
// truth = DIR/{split}/{split}.json + DIR/resources/id2label.json, predictions = PNGs at the seg_map paths.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "em/metrics/segmentation.hpp"

namespace em::metrics {

struct SegmentationScoreOptions {
  int ignore_index = 255;
  bool reduce_labels = false;
  // Score only the images whose prediction PNG exists (warning with the count) instead of failing.
  bool allow_missing = false;
};

struct SegmentationScore {
  SegmentationMetrics metrics;
  std::vector<std::string> labels;  // by id
  std::size_t num_images = 0;       // entries of the split file
  std::size_t num_scored = 0;       // entries with a prediction
};

// truth_split_dir = DIR/validation: reads DIR/validation/validation.json (for the split "test" the platform guide's misspelt
// test/train.json is accepted with a warning) and DIR/resources/id2label.json (or the guide's id2lable.json). For each
// {"image", "seg_map"} entry the prediction is pred_dir/<seg_map>, a single-channel PNG of label ids the size of the
// truth map. Errors name the file: unreadable or multi-channel PNGs, size mismatches, missing predictions (unless
// allow_missing).
SegmentationScore score_segmentation_folders(const std::filesystem::path& truth_split_dir,
                                             const std::filesystem::path& pred_dir,
                                             const SegmentationScoreOptions& options = {});

}  // namespace em::metrics
