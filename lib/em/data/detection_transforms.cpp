#include "em/data/detection_transforms.hpp"

#include "em/core/error.hpp"
#include "em/data/sampling.hpp"
#include "em/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace em::data {

std::pair<int, int> detr_resize_size(int height, int width, int64_t size, int64_t max_size) {
  if (height <= 0 || width <= 0) fail("detr resize: image size {}x{} is empty", width, height);
  if (size <= 0) fail("detr resize: shortest edge {} must be positive", size);
  // Line for line HF's get_size_with_aspect_ratio (Python: round() rounds half to even, int() truncates).
  double raw_size = 0;
  bool has_raw = false;
  if (max_size > 0) {
    const double min_original = static_cast<double>(std::min(height, width));
    const double max_original = static_cast<double>(std::max(height, width));
    if (max_original / min_original * static_cast<double>(size) > static_cast<double>(max_size)) {
      raw_size = static_cast<double>(max_size) * min_original / max_original;
      size = static_cast<int64_t>(std::nearbyint(raw_size));
      has_raw = true;
    }
  }
  int64_t oh, ow;
  if ((height <= width && height == size) || (width <= height && width == size)) {
    oh = height;
    ow = width;
  } else if (width < height) {
    ow = size;
    oh = has_raw ? static_cast<int64_t>(raw_size * height / width)
                 : static_cast<int64_t>(static_cast<double>(size * height) / width);
  } else {
    oh = size;
    ow = has_raw ? static_cast<int64_t>(raw_size * width / height)
                 : static_cast<int64_t>(static_cast<double>(size * width) / height);
  }
  // A very elongated image can round an edge to 0; one pixel is the least an image can have.
  return {static_cast<int>(std::max<int64_t>(1, oh)), static_cast<int>(std::max<int64_t>(1, ow))};
}

int64_t detr_longest_edge(int64_t shortest_edge) { return std::llround(1333.0 * shortest_edge / 800.0); }

void hflip(Image& image, BoxTargets& targets) {
  image = horizontal_flip(image);
  const float w = static_cast<float>(image.width);
  for (auto& b : targets.boxes) {
    const float x0 = b[0], x1 = b[2];
    b[0] = w - x1;
    b[2] = w - x0;
  }
}

void resize_with_boxes(Image& image, BoxTargets& targets, int width, int height) {
  const float rw = static_cast<float>(width) / static_cast<float>(image.width);
  const float rh = static_cast<float>(height) / static_cast<float>(image.height);
  image = resize_bilinear(image, width, height);
  for (auto& b : targets.boxes) {
    b[0] *= rw;
    b[1] *= rh;
    b[2] *= rw;
    b[3] *= rh;
  }
}

void crop_with_boxes(Image& image, BoxTargets& targets, int top, int left, int height, int width) {
  image = crop(image, left, top, width, height);  // fails for a region outside the image

  BoxTargets kept;
  const float fw = static_cast<float>(width), fh = static_cast<float>(height);
  for (size_t i = 0; i < targets.size(); ++i) {
    std::array<float, 4> b = targets.boxes[i];
    b[0] = std::clamp(b[0] - left, 0.0f, fw);
    b[2] = std::clamp(b[2] - left, 0.0f, fw);
    b[1] = std::clamp(b[1] - top, 0.0f, fh);
    b[3] = std::clamp(b[3] - top, 0.0f, fh);
    if (b[2] > b[0] && b[3] > b[1]) {
      kept.boxes.push_back(b);
      kept.labels.push_back(targets.labels[i]);
    }
  }
  targets = std::move(kept);
}

DetectionAugmentation parse_detection_augmentation(const std::string& name) {
  if (name == "none") return DetectionAugmentation::none;
  if (name == "flip") return DetectionAugmentation::flip;
  if (name == "detr") return DetectionAugmentation::detr;
  usage_fail("augmentation: unknown value \"{}\" (expected detr, flip or none)", name);
}

DetrAugmentSizes DetrAugmentSizes::for_image_size(int64_t image_size) {
  auto scaled = [&](int64_t v) { return std::max<int64_t>(1, std::llround(static_cast<double>(v) * image_size / 800.0)); };
  auto scaled_list = [&](std::vector<int64_t> values) {
    std::vector<int64_t> out;
    for (int64_t v : values) {
      int64_t s = scaled(v);
      if (out.empty() || out.back() != s) out.push_back(s);
    }
    return out;
  };
  DetrAugmentSizes s;
  s.scales = scaled_list({480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800});
  s.max_size = detr_longest_edge(image_size);
  s.crop_resizes = scaled_list({400, 500, 600});
  s.crop_min = scaled(384);
  s.crop_max = scaled(600);
  return s;
}

namespace {

int64_t pick(std::mt19937_64& rng, const std::vector<int64_t>& values) {
  return values[static_cast<size_t>(uniform_below(rng, values.size()))];
}

// random.randint(lo, hi), both ends included.
int64_t randint(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(hi - lo + 1)));
}

void resize_shortest(Image& image, BoxTargets& targets, int64_t size, int64_t max_size) {
  auto [h, w] = detr_resize_size(image.height, image.width, size, max_size);
  resize_with_boxes(image, targets, w, h);
}

}  // namespace

void detection_train_transform(Image& image, BoxTargets& targets, uint64_t seed, DetectionAugmentation kind,
                               int64_t image_size) {
  std::mt19937_64 rng(seed);
  if (kind == DetectionAugmentation::none) {
    resize_shortest(image, targets, image_size, detr_longest_edge(image_size));
    return;
  }
  if (uniform_below(rng, 2) == 0) hflip(image, targets);
  if (kind == DetectionAugmentation::flip) {
    resize_shortest(image, targets, image_size, detr_longest_edge(image_size));
    return;
  }
  const DetrAugmentSizes sizes = DetrAugmentSizes::for_image_size(image_size);
  if (uniform_below(rng, 2) == 0) {
    resize_shortest(image, targets, pick(rng, sizes.scales), sizes.max_size);
    return;
  }
  resize_shortest(image, targets, pick(rng, sizes.crop_resizes), 0);
  // RandomSizeCrop(crop_min, crop_max): w, h uniform in [crop_min, min(edge, crop_max)], then a uniform position
  // (torchvision's RandomCrop.get_params). An image smaller than crop_min keeps that whole edge.
  const int64_t w = randint(rng, std::min<int64_t>(sizes.crop_min, image.width),
                            std::min<int64_t>(image.width, sizes.crop_max));
  const int64_t h = randint(rng, std::min<int64_t>(sizes.crop_min, image.height),
                            std::min<int64_t>(image.height, sizes.crop_max));
  const int64_t top = randint(rng, 0, image.height - h);
  const int64_t left = randint(rng, 0, image.width - w);
  crop_with_boxes(image, targets, static_cast<int>(top), static_cast<int>(left), static_cast<int>(h),
                  static_cast<int>(w));
  resize_shortest(image, targets, pick(rng, sizes.scales), sizes.max_size);
}

}  // namespace em::data
