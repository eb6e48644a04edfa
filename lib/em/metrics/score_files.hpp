// em-metrics' job for every algorithm: prediction files + ground truth -> the metrics JSON, through one table of
// scorers indexed by core/algo's Algo (classification: JSONL vs a split folder or JSONL; segmentation: label PNG
// folders; detection: COCO results vs COCO ground truth). docs/em-metrics.md has the formats.
#pragma once
#include <string>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"

namespace em::metrics {

struct ScoreFilesOptions {
  bool allow_missing = false;  // score only the truth items that have a prediction (warn) instead of failing
  int ignore_index = 255;      // segmentation: truth value left out of the metrics
  bool reduce_labels = false;  // segmentation: truth 0 ignored, the other ids drop by one (ADE20K-style)
  int threads = 0;             // worker threads where the scorer has them (0 = every usable CPU)
};

// The metrics JSON of `algo` for these files; logs how much was scored.
io::Json score_files(Algo algo, const std::string& truth, const std::string& predictions,
                     const ScoreFilesOptions& options);

}  // namespace em::metrics
