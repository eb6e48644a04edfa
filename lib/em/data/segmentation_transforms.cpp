#include "em/data/segmentation_transforms.hpp"

#include "em/core/error.hpp"
#include "em/data/sampling.hpp"
#include "em/data/transforms.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

namespace em::data {
namespace {

// Uniform in [0, 1) from the top 53 bits, as NumPy's random() does.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// The window start for a window of `crop` over `size` pixels: in [0, size - crop] when the image is larger, else in
// [size - crop, 0] (the image placed anywhere inside the padded window).
int window_start(std::mt19937_64& rng, int size, int crop) {
  const int slack = std::abs(size - crop);
  const int offset = static_cast<int>(uniform_below(rng, static_cast<uint64_t>(slack) + 1));
  return size >= crop ? offset : -offset;
}

// The crop_size x crop_size window of `in` at (x0, y0), `fill` outside it (one value per channel).
io::Image crop_or_pad(const io::Image& in, int x0, int y0, int crop, const uint8_t* fill) {
  io::Image out;
  out.width = out.height = crop;
  out.channels = in.channels;
  out.pixels.resize(out.size());
  const size_t ch = static_cast<size_t>(in.channels);
  for (int y = 0; y < crop; ++y) {
    uint8_t* row = &out.pixels[static_cast<size_t>(y) * crop * ch];
    const int sy = y0 + y;
    for (int x = 0; x < crop; ++x) {
      const int sx = x0 + x;
      if (sy >= 0 && sy < in.height && sx >= 0 && sx < in.width)
        std::memcpy(row + x * ch, &in.pixels[(static_cast<size_t>(sy) * in.width + sx) * ch], ch);
      else
        std::memcpy(row + x * ch, fill, ch);
    }
  }
  return out;
}

}  // namespace

SegmentationAugmentDraw draw_segmentation_augment(uint64_t sample_seed, const SegmentationAugmentOptions& o) {
  if (o.crop_size < 1 || !(o.min_scale > 0) || !(o.max_scale >= o.min_scale))
    fail("segmentation augmentation: crop_size {} and scale range [{}, {}] are not valid", o.crop_size, o.min_scale,
         o.max_scale);
  std::mt19937_64 rng(sample_seed);
  SegmentationAugmentDraw d;
  const double scale = o.min_scale + (o.max_scale - o.min_scale) * uniform01(rng);
  d.scaled_width = d.scaled_height = std::max(1, static_cast<int>(std::lround(o.crop_size * scale)));
  d.crop_x = window_start(rng, d.scaled_width, o.crop_size);
  d.crop_y = window_start(rng, d.scaled_height, o.crop_size);
  d.flip = o.flip && (rng() >> 63) != 0;
  return d;
}

SegmentationSample apply_segmentation_augment(const SegmentationSample& sample, const SegmentationAugmentDraw& d,
                                              const SegmentationAugmentOptions& o) {
  const io::Image& image = sample.image;
  const io::Image& map = sample.label_map;
  if (image.channels != 3 || map.channels != 1 || image.width != map.width || image.height != map.height)
    fail("segmentation augmentation: expected an RGB image and a one-channel label map of one size, got {}x{}x{} "
         "and {}x{}x{}",
         image.width, image.height, image.channels, map.width, map.height, map.channels);
  // PIL's bilinear and nearest both map output pixel centres to input pixel centres ((x + 0.5) * in / out), so the
  // two resized maps stay aligned pixel for pixel.
  io::Image scaled_image = resize_bilinear(image, d.scaled_width, d.scaled_height);
  io::Image scaled_map = resize_nearest(map, d.scaled_width, d.scaled_height);
  if (d.flip) {
    scaled_image = horizontal_flip(scaled_image);
    scaled_map = horizontal_flip(scaled_map);
  }
  const uint8_t mean_colour[3] = {static_cast<uint8_t>(std::lround(kImageNetMean[0] * 255)),
                                  static_cast<uint8_t>(std::lround(kImageNetMean[1] * 255)),
                                  static_cast<uint8_t>(std::lround(kImageNetMean[2] * 255))};
  const uint8_t ignore = static_cast<uint8_t>(kIgnoreLabel);
  SegmentationSample out;
  out.image = crop_or_pad(scaled_image, d.crop_x, d.crop_y, o.crop_size, mean_colour);
  out.label_map = crop_or_pad(scaled_map, d.crop_x, d.crop_y, o.crop_size, &ignore);
  return out;
}

}  // namespace em::data
