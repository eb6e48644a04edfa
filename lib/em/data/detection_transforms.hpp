// Detection preprocessing and box-consistent augmentation: HF DetrImageProcessor's resize rule, the original DETR's
// train transforms (flip, multi-scale resize, random size crop) moving boxes with the pixels, seeded per
// sample. The padded tensor batch is tensor/detection_tensors.hpp.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "em/io/image.hpp"

namespace em::data {

using io::Image;

// The boxes of one image in pixels of that image, (x0, y0, x1, y1), with their label indices.
struct BoxTargets {
  std::vector<std::array<float, 4>> boxes;
  std::vector<int64_t> labels;
  size_t size() const { return boxes.size(); }
};

// HF image_transforms.get_size_with_aspect_ratio: the (height, width) that makes the shorter edge `size`, unless the
// longer one would then pass max_size (> 0), in which case the longer edge becomes about max_size (never more).
std::pair<int, int> detr_resize_size(int height, int width, int64_t size, int64_t max_size);
// DETR pairs shortest edge 800 with longest edge 1333; for another --image_size S the longest edge is
// round(1333 * S / 800) (S = 800 gives 1333), so every image keeps the default's proportions.
int64_t detr_longest_edge(int64_t shortest_edge);

// Box-consistent geometric transforms (boxes move with the pixels; the original DETR's datasets/transforms.py).
void hflip(Image& image, BoxTargets& targets);                           // x -> width - x
void resize_with_boxes(Image& image, BoxTargets& targets, int width, int height);  // bilinear (PIL), boxes scaled
// Keeps rows top..top+height-1 and columns left..left+width-1; boxes are shifted, clipped to the crop, and dropped
// when nothing of them is left (x1 <= x0 or y1 <= y0), as the original crop().
void crop_with_boxes(Image& image, BoxTargets& targets, int top, int left, int height, int width);

// Training augmentation (hyperparameter `augmentation`).
enum class DetectionAugmentation {
  none,  // resize to image_size (shortest edge) / detr_longest_edge(image_size), as evaluation
  flip,  // horizontal flip with p = 1/2, then that resize
  detr,  // the original DETR recipe (make_coco_transforms("train")), scaled by image_size / 800
};
DetectionAugmentation parse_detection_augmentation(const std::string& name);  // throws em::UsageError

// The sizes of the DETR recipe at --image_size S (all round(v * S / 800), duplicates removed): RandomHorizontalFlip,
// then with p = 1/2 RandomResize(scales, max_size), else RandomResize(crop_resizes) -> RandomSizeCrop(crop_min,
// crop_max) -> RandomResize(scales, max_size). At S = 800: scales 480..800 step 32, max_size 1333, crop_resizes
// 400/500/600, crop 384..600.
struct DetrAugmentSizes {
  std::vector<int64_t> scales;
  int64_t max_size = 1333;
  std::vector<int64_t> crop_resizes;
  int64_t crop_min = 384, crop_max = 600;
  static DetrAugmentSizes for_image_size(int64_t image_size);
};

// Resizes (and, by `kind`, augments) one training image and its boxes. Every random choice comes from
// std::mt19937_64(seed) through uniform_below, so (seed = sample_seed(seed, epoch, index)) fixes the result on any
// thread, after a resume and across standard libraries.
void detection_train_transform(Image& image, BoxTargets& targets, uint64_t seed, DetectionAugmentation kind,
                               int64_t image_size);

}  // namespace em::data
