// Image transforms shared by training, em-eval, em-predict and em-serve: PIL-exact resizing, flips, RGB conversion.
// The image -> tensor steps (normalisation, the classification preprocessing) are tensor/image_tensor.hpp.
#pragma once
#include <array>
#include <vector>

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
// Throws em::Error naming `what` unless the image is non-empty with width x height x channels bytes.
void check_image(const Image& image, const char* what);
// 1 -> 3 channels by replication, 4 -> 3 by dropping alpha (as PIL's convert("RGB")); 3 unchanged.
Image to_rgb(const Image& image);

}  // namespace em::data
