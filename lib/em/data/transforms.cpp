#include "em/data/transforms.hpp"

#include "em/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/ranges.h>

namespace em::data {
namespace {

// The constants and rounding of Pillow's libImaging/Resample.c (8 bits per channel path).
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;      // per output pixel: first input index, count
  std::vector<int32_t> weights; // per output pixel: ksize fixed-point weights
};

// Pillow's filter kernels (Resample.c), each with its support at scale 1.
struct FilterKernel {
  double (*weight)(double);
  double support;
};

double box_kernel(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

double triangle_kernel(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_kernel(double x) {
  x = std::abs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}

double bicubic_kernel(double x) {
  constexpr double a = -0.5;  // Pillow's (Keys' cubic convolution; torchvision's antialiased bicubic uses -0.5 too)
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos_kernel(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

FilterKernel kernel_of(Filter filter) {
  switch (filter) {
    case Filter::box: return {box_kernel, 0.5};
    case Filter::bilinear: return {triangle_kernel, 1.0};
    case Filter::hamming: return {hamming_kernel, 1.0};
    case Filter::bicubic: return {bicubic_kernel, 2.0};
    case Filter::lanczos: return {lanczos_kernel, 3.0};
    case Filter::nearest: break;
  }
  fail("resize: filter {} has no convolution kernel", static_cast<int>(filter));
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole input range (box = 0..in_size).
Coefficients precompute(int in_size, int out_size, const FilterKernel& filter) {
  double scale = static_cast<double>(in_size) / out_size;
  double filterscale = std::max(scale, 1.0);
  double support = filter.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<size_t>(out_size));
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = filter.weight((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[x] / ww : k[x];
      c.weights[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

}  // namespace

void check_image(const Image& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 || image.channels <= 0 || image.pixels.size() != image.size())
    fail("{}: bad image {}x{}x{} with {} bytes", what, image.width, image.height, image.channels,
         image.pixels.size());
}

namespace {

// Pillow's horizontal pass, into 8 bits: `rows` rows of `in` from `row_first` (the ones the vertical pass reads).
Image horizontal_pass(const Image& in, const Coefficients& horiz, int width, int row_first, int rows) {
  const int ch = in.channels;
  Image temp;
  temp.width = width;
  temp.height = rows;
  temp.channels = ch;
  temp.pixels.resize(temp.size());
  for (int y = 0; y < temp.height; ++y) {
    const uint8_t* row = in.pixels.data() + static_cast<size_t>(y + row_first) * in.width * ch;
    uint8_t* out = temp.pixels.data() + static_cast<size_t>(y) * width * ch;
    for (int xx = 0; xx < width; ++xx) {
      int xmin = horiz.bounds[2 * xx], count = horiz.bounds[2 * xx + 1];
      const int32_t* k = horiz.weights.data() + static_cast<size_t>(xx) * horiz.ksize;
      for (int c = 0; c < ch; ++c) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < count; ++x) ss += row[(xmin + x) * ch + c] * k[x];
        out[xx * ch + c] = clip8(ss);
      }
    }
  }
  return temp;
}

// Pillow's vertical pass: every output row a weighted sum of rows of `src`.
Image vertical_pass(const Image& src, const Coefficients& vert, int height) {
  const int ch = src.channels;
  Image out;
  out.width = src.width;
  out.height = height;
  out.channels = ch;
  out.pixels.resize(out.size());
  const size_t stride = static_cast<size_t>(src.width) * ch;
  for (int yy = 0; yy < height; ++yy) {
    int ymin = vert.bounds[2 * yy], count = vert.bounds[2 * yy + 1];
    const int32_t* k = vert.weights.data() + static_cast<size_t>(yy) * vert.ksize;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(yy) * stride;
    for (size_t i = 0; i < stride; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < count; ++y) ss += src.pixels[(ymin + y) * stride + i] * k[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

}  // namespace

Filter pil_filter(int code, const char* what) {
  if (code < 0 || code > 5)
    fail("{}: expected a PIL filter code 0..5 (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming), got {}",
         what, code);
  return static_cast<Filter>(code);
}

const char* filter_name(Filter filter) {
  static const char* const names[] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"};
  return names[static_cast<int>(filter)];
}

Image resize(const Image& in, int width, int height, Filter filter) {
  if (filter == Filter::nearest) return resize_nearest(in, width, height);
  check_image(in, "resize");
  if (width <= 0 || height <= 0) fail("resize: target size must be positive, got {}x{}", width, height);
  if (width == in.width && height == in.height) return in;
  const FilterKernel kernel = kernel_of(filter);
  Coefficients horiz = precompute(in.width, width, kernel);
  Coefficients vert = precompute(in.height, height, kernel);
  if (width == in.width) return vertical_pass(in, vert, height);

  // The horizontal pass covers only the rows the vertical pass will read (Pillow's ybox_first..ybox_last).
  const int row_first = vert.bounds[0];
  const int row_last = vert.bounds[2 * (height - 1)] + vert.bounds[2 * (height - 1) + 1];
  Image temp = horizontal_pass(in, horiz, width, row_first, row_last - row_first);
  if (height == in.height) return temp;  // only the width changed: Pillow skips the vertical pass
  for (int yy = 0; yy < height; ++yy) vert.bounds[2 * yy] -= row_first;
  return vertical_pass(temp, vert, height);
}

Image resize_bilinear(const Image& in, int width, int height) { return resize(in, width, height, Filter::bilinear); }

Image crop(const Image& in, int left, int top, int width, int height) {
  check_image(in, "crop");
  if (width <= 0 || height <= 0 || left < 0 || top < 0 || left + width > in.width || top + height > in.height)
    fail("crop: the box {}x{} at ({}, {}) does not lie inside the {}x{} image", width, height, left, top, in.width,
         in.height);
  Image out;
  out.width = width;
  out.height = height;
  out.channels = in.channels;
  out.pixels.resize(out.size());
  const size_t row = static_cast<size_t>(width) * in.channels;
  for (int y = 0; y < height; ++y)
    std::memcpy(&out.pixels[y * row], &in.pixels[((static_cast<size_t>(y) + top) * in.width + left) * in.channels], row);
  return out;
}

Image resize_nearest(const Image& in, int width, int height) {
  check_image(in, "resize");
  if (width <= 0 || height <= 0) fail("resize: target size must be positive, got {}x{}", width, height);
  if (width == in.width && height == in.height) return in;
  // Pillow's ImagingScaleAffine: the source coordinate is accumulated by repeated addition from a0 * 0.5,
  // and truncated; accumulate the same way so rounding at exact .0 boundaries matches.
  auto table = [](int in_size, int out_size) {
    std::vector<int> t(out_size);
    double a = static_cast<double>(in_size) / out_size;
    double pos = a * 0.5;
    for (int i = 0; i < out_size; ++i, pos += a) t[i] = std::min(static_cast<int>(pos), in_size - 1);
    return t;
  };
  std::vector<int> xs = table(in.width, width), ys = table(in.height, height);
  Image out;
  out.width = width;
  out.height = height;
  out.channels = in.channels;
  out.pixels.resize(out.size());
  const int ch = in.channels;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      std::memcpy(&out.pixels[(static_cast<size_t>(y) * width + x) * ch],
                  &in.pixels[(static_cast<size_t>(ys[y]) * in.width + xs[x]) * ch], ch);
  return out;
}

Image horizontal_flip(const Image& in) {
  check_image(in, "horizontal_flip");
  Image out = in;
  const int ch = in.channels;
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x)
      std::memcpy(&out.pixels[(static_cast<size_t>(y) * in.width + x) * ch],
                  &in.pixels[(static_cast<size_t>(y) * in.width + (in.width - 1 - x)) * ch], ch);
  return out;
}

Image to_rgb(const Image& in) {
  check_image(in, "to_rgb");
  if (in.channels == 3) return in;
  Image out;
  out.width = in.width;
  out.height = in.height;
  out.channels = 3;
  out.pixels.resize(out.size());
  const size_t n = static_cast<size_t>(in.width) * in.height;
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      out.pixels[i * 3 + c] = in.channels < 3 ? in.pixels[i * in.channels] : in.pixels[i * in.channels + c];
  return out;
}

}  // namespace em::data
