// Detection batches as DETR takes them: images padded to one frame with a pixel mask (HF's DetrImageProcessor.pad)
// and target boxes normalised to that frame.
#pragma once
#include <vector>

#include <torch/types.h>

#include "em/data/detection_transforms.hpp"

namespace em::tensor {

using data::BoxTargets;

// A batch of [3, h_i, w_i] float images padded at the bottom and right with zeros to the largest h and w (HF's
// DetrImageProcessor.pad), and the pixel mask [N, H, W] int64: 1 on the image's own pixels, 0 on padding.
struct PaddedBatch {
  torch::Tensor pixel_values;
  torch::Tensor pixel_mask;
};
PaddedBatch pad_images(const std::vector<torch::Tensor>& images);

// DETR's target boxes [M, 4] float: (cx, cy, w, h) of xyxy pixel boxes divided by the frame (the padded input, as
// HF's processor does after padding: pred_boxes live in that frame).
torch::Tensor normalized_cxcywh(const BoxTargets& targets, int frame_width, int frame_height);

}  // namespace em::tensor
