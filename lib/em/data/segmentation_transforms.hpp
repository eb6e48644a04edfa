// Training augmentation for semantic segmentation, applied identically to an image and its label map: random scale,
// horizontal flip, random crop (padding where the scaled image is smaller), drawn from one per-sample seed so that
// the same (seed, epoch, index) gives the same crop on any worker and after a resume.
#pragma once
#include <cstdint>

#include "em/data/segmentation_dataset.hpp"
#include "em/io/image.hpp"

namespace em::data {

struct SegmentationAugmentOptions {
  int crop_size = 512;     // output height = width (--image_size)
  double min_scale = 0.5;  // the scale factor is uniform in [min_scale, max_scale] (mmsegmentation's ratio_range)
  double max_scale = 2.0;
  bool flip = true;        // horizontal flip with probability 1/2
};

// One sample's random choices. The scaled image is the evaluation geometry (the image resized to
// crop_size x crop_size, as the model sees it at evaluation) times `scale`; the crop window's top-left corner in the
// scaled image is (crop_x, crop_y), negative when the scaled image is smaller than the crop (it then sits at
// (-crop_x, -crop_y) inside the padded output).
struct SegmentationAugmentDraw {
  int scaled_width = 0, scaled_height = 0;
  int crop_x = 0, crop_y = 0;
  bool flip = false;
};

// The draw for a sample seed (data::sample_seed(seed, epoch, index)): an std::mt19937_64 from it, read without any
// standard-library distribution (those differ between standard libraries), so runs reproduce everywhere.
SegmentationAugmentDraw draw_segmentation_augment(uint64_t sample_seed, const SegmentationAugmentOptions& options);

// Resizes the image (bilinear, PIL-exact) and the label map (nearest: ids are never blended) to the scaled size,
// flips both, and crops both to crop_size x crop_size. Where the window leaves the scaled image the label map is
// kIgnoreLabel (255) and the image the ImageNet mean colour (0 after normalisation). `sample` is an RGB image with a
// label map of the same size.
SegmentationSample apply_segmentation_augment(const SegmentationSample& sample, const SegmentationAugmentDraw& draw,
                                              const SegmentationAugmentOptions& options);

}  // namespace em::data
