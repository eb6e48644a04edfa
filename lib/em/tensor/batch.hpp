// The batch every algorithm's loader produces and every trainer/evaluator consumes.
// Each field says which algorithm fills it; the others leave it an undefined tensor / an empty vector.
#pragma once
#include <cstdint>
#include <array>
#include <vector>

#include <torch/torch.h>

namespace em::tensor {

// Detection training: one image's boxes, as DETR's loss takes them (models::DetrTarget).
struct BoxTarget {
  torch::Tensor labels;  // [M] int64, class ids 0..num_labels-1
  torch::Tensor boxes;   // [M, 4] float (cx, cy, w, h) relative to the frame pred_boxes live in (the padded input)
};

// Detection evaluation: one image's sizes as (height, width), to bring boxes back to the original pixels.
struct ImageSizes {
  std::array<int, 2> original;  // the file's
  std::array<int, 2> input;     // after the processor's resize, before padding
};

struct Batch {
  torch::Tensor pixel_values;  // [N,3,H,W] float32, normalized
  torch::Tensor pixel_mask;    // detection: [N,H,W] int64, 1 = real pixel, 0 = padding; else undefined
  torch::Tensor labels;        // classification: [N] int64; segmentation training: [N,H,W] int64 (255 = ignore)
  std::vector<BoxTarget> boxes;           // detection training: per image
  std::vector<ImageSizes> sizes;          // detection evaluation: per image
  std::vector<torch::Tensor> label_maps;  // segmentation evaluation: per image, [H,W] int64 at the original size
  std::vector<int64_t> indices;  // dataset index of each row, in row order
  int64_t skipped = 0;           // samples dropped from this batch because they could not be read

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

}  // namespace em::tensor
