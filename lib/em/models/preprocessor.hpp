// The one function that applies a preprocessor_config.json (PreprocessorConfig, preprocessor_config.hpp: HF
// ViTImageProcessor's / SegformerImageProcessor's fields) to an image, as HF's processor does.
#pragma once
#include "em/io/image.hpp"
#include "em/models/preprocessor_config.hpp"

namespace at {
class Tensor;
}

namespace em::models {

// One decoded image -> [3, height, width] float, exactly as HF's processor with this config: to RGB, bilinear resize
// (PIL-exact) unless already that size, rescale, normalise. Shared by training, em-eval, em-predict and em-serve.
at::Tensor preprocess_image(const PreprocessorConfig& config, const io::Image& image);

}  // namespace em::models
