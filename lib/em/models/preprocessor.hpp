// The one function that applies a preprocessor_config.json (PreprocessorConfig, preprocessor_config.hpp: HF
// ViTImageProcessor's / SegformerImageProcessor's / ConvNextImageProcessor's fields) to an image, as HF's processor
// does.
#pragma once
#include "em/io/image.hpp"
#include "em/models/preprocessor_config.hpp"

namespace at {
class Tensor;
}

namespace em::models {

// One decoded image -> [3, height, width] float, exactly as HF's PIL-based processor with this config: to RGB, resize
// with the config's PIL filter (bit-exact) unless already that size, ConvNext's centre crop, rescale, normalise.
// Shared by training, em-eval, em-predict and em-serve.
at::Tensor preprocess_image(const PreprocessorConfig& config, const io::Image& image);

}  // namespace em::models
