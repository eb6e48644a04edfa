// The batch every algorithm's loader produces and every trainer/evaluator consumes.
// Fields an algorithm does not use stay undefined tensors / empty vectors.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace em::tensor {

struct Batch {
  torch::Tensor pixel_values;  // [N,3,H,W] float32, normalized
  torch::Tensor pixel_mask;    // detection: [N,H,W] int64, 1 = real pixel, 0 = padding; else undefined
  torch::Tensor labels;        // classification: [N] int64; segmentation: [N,H,W] int64 (255 = ignore)
  std::vector<std::map<std::string, torch::Tensor>> targets;  // detection: per image "class_labels", "boxes", ...
  std::vector<int64_t> indices;  // dataset index of each row, in row order
  int64_t skipped = 0;           // samples dropped from this batch because they could not be read

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

}  // namespace em::tensor
