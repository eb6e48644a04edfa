// Decoded images to the float tensors models take: rescale + normalise, the one classification preprocessing that
// every tool applies alike, and stacking into a batch. Plain loops, safe to call from loader workers.
#pragma once
#include <array>
#include <vector>

#include <torch/types.h>

#include "em/data/transforms.hpp"
#include "em/io/image.hpp"

namespace em::tensor {

using io::Image;
using data::kImageNetMean;
using data::kImageNetStd;

// float [C,H,W] = (pixel / 255 - mean[c]) / std[c]; the image must have 3 channels. Plain loops, no LibTorch
// parallelism, so loader workers may call it without oversubscribing cores.
torch::Tensor to_normalized_tensor(const Image& image, const std::array<float, 3>& mean = kImageNetMean,
                                   const std::array<float, 3>& std = kImageNetStd);

// THE classification preprocessing (docs/models.md), used by em-train, em-eval, em-predict and em-serve alike:
// to RGB, resize to input_size x input_size (bilinear) unless already that size, ImageNet normalize -> [3,S,S].
torch::Tensor preprocess_classification(const Image& image, int input_size);

// [N, ...] from N tensors of one shape (a contiguous copy, no LibTorch threads). Throws naming the first mismatch.
torch::Tensor stack_tensors(const std::vector<torch::Tensor>& items);

}  // namespace em::tensor
