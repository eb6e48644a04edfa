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

// PIL's resampling filters by their Image.resize codes (HF image processors' "resample" field).
enum class Filter { nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5 };
// The filter of a PIL code 0..5; throws em::Error naming `what` for any other code.
Filter pil_filter(int code, const char* what = "resample");
const char* filter_name(Filter filter);  // "bilinear", ...

// Resizes like PIL's Image.resize(size, filter) on 8-bit images (what HF image processors call), bit for bit (Pillow
// 9.4's Resample.c): a convolution whose support grows with the downscale factor (area-aware: no aliasing when
// shrinking) — box 0.5, triangle 1, Hamming 1, bicubic (a = -0.5) 2, Lanczos (a = 3) 3 — weights renormalised at the
// borders, 22-bit fixed-point coefficients, horizontal pass first; nearest is PIL's affine nearest (resize_nearest).
// Any channel count; channels are independent (no premultiplied alpha, unlike PIL on RGBA). Same size: a copy.
Image resize(const Image& image, int width, int height, Filter filter = Filter::bilinear);
// resize(image, width, height, Filter::bilinear).
Image resize_bilinear(const Image& image, int width, int height);
// PIL's Image.resize(size, NEAREST): source pixel floor((x + 0.5) * in / out). For label maps (never blends ids).
Image resize_nearest(const Image& image, int width, int height);
// The width x height pixels whose top-left corner is (left, top); the box must lie inside the image.
Image crop(const Image& image, int left, int top, int width, int height);

Image horizontal_flip(const Image& image);
// Throws em::Error naming `what` unless the image is non-empty with width x height x channels bytes.
void check_image(const Image& image, const char* what);
// 1 -> 3 channels by replication, 4 -> 3 by dropping alpha (as PIL's convert("RGB")); 3 unchanged.
Image to_rgb(const Image& image);

}  // namespace em::data
