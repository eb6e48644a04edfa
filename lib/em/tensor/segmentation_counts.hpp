// Torch-tensor entry to SegmentationAccumulator for em-eval and em-train: predicted label maps (argmax) and truth
// label tensors of any integer type, on any device, one image [H, W] or a batch [B, H, W].
#pragma once
#include <torch/types.h>

#include "em/metrics/segmentation.hpp"

namespace em::tensor {

// Adds every pixel of pred/truth (same shape, integer dtypes) to the accumulator; copies to the CPU when needed.
// Throws em::Error for a shape mismatch or a floating-point tensor (pass logits.argmax(1), not the logits).
void add_label_maps(metrics::SegmentationAccumulator& accumulator, const torch::Tensor& pred, const torch::Tensor& truth);

}  // namespace em::tensor
