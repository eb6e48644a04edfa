#include "em/models/preprocessor.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/data/transforms.hpp"

#include <array>

namespace em::models {

torch::Tensor preprocess_image(const PreprocessorConfig& p, const io::Image& image) {
  io::Image rgb = data::to_rgb(image);
  // HF's resize (PIL, the processor's `resample`), then ConvNext's centre crop; the same size is a copy in PIL.
  const PreprocessorConfig::Geometry g = p.geometry(rgb.height, rgb.width);
  if (g.resize_width != rgb.width || g.resize_height != rgb.height)
    rgb = data::resize(rgb, g.resize_width, g.resize_height, data::pil_filter(p.resample));
  if (g.width != rgb.width || g.height != rgb.height) rgb = data::crop(rgb, g.crop_left, g.crop_top, g.width, g.height);
  const float scale = p.do_rescale ? static_cast<float>(p.rescale_factor * 255.0) : 255.0f;
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};
  for (int c = 0; c < 3; ++c) {
    // to_normalized_tensor computes (x/255 - mean)/std; fold the rescale factor and do_normalize into mean/std.
    if (p.do_normalize) {
      mean[c] = static_cast<float>(p.image_mean[static_cast<size_t>(c) % p.image_mean.size()]) / scale;
      std[c] = static_cast<float>(p.image_std[static_cast<size_t>(c) % p.image_std.size()]) / scale;
    } else {
      std[c] = 1.0f / scale;
    }
  }
  return tensor::to_normalized_tensor(rgb, mean, std);
}

}  // namespace em::models
