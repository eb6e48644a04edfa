// Image transforms shared by training, em-eval, em-predict and em-serve: PIL-exact resizing, flips, and the one
// classification preprocessing (resize -> rescale 1/255 -> ImageNet normalize) that every tool must apply alike.
#pragma once
#include <array>
#include <vector>

#include <torch/torch.h>

#include "em/io/image.hpp"

namespace em::data {

using io::Image;

// ImageNet statistics (HF IMAGENET_DEFAULT_MEAN/STD), the classification and segmentation defaults.
constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

// Resizes like PIL's Image.resize(size, BILINEAR) on 8-bit images (what HF image processors call), bit for bit:
// a triangle filter whose support grows with the downscale factor (area-aware: no aliasing when shrinking),
// weights renormalised at the borders, 22-bit fixed-point coefficients, horizontal pass first. Any channel count;
// channels are independent (no premultiplied alpha, unlike PIL on RGBA). Same size: a copy.
Image resize_bilinear(const Image& image, int width, int height);
// PIL's Image.resize(size, NEAREST): source pixel floor((x + 0.5) * in / out). For label maps (never blends ids).
Image resize_nearest(const Image& image, int width, int height);
// The default image resize (bilinear).
inline Image resize(const Image& image, int width, int height) { return resize_bilinear(image, width, height); }

Image horizontal_flip(const Image& image);
// 1 -> 3 channels by replication, 4 -> 3 by dropping alpha (as PIL's convert("RGB")); 3 unchanged.
Image to_rgb(const Image& image);

// float [C,H,W] = (pixel / 255 - mean[c]) / std[c]; the image must have 3 channels. Plain loops, no LibTorch
// parallelism, so loader workers may call it without oversubscribing cores.
torch::Tensor to_normalized_tensor(const Image& image, const std::array<float, 3>& mean = kImageNetMean,
                                   const std::array<float, 3>& std = kImageNetStd);

// THE classification preprocessing (SPEC §4), used by em-train, em-eval, em-predict and em-serve alike:
// to RGB, resize to input_size x input_size (bilinear) unless already that size, ImageNet normalize -> [3,S,S].
torch::Tensor preprocess_classification(const Image& image, int input_size);

// [N, ...] from N tensors of one shape (a contiguous copy, no LibTorch threads). Throws naming the first mismatch.
torch::Tensor stack_tensors(const std::vector<torch::Tensor>& items);

}  // namespace em::data
