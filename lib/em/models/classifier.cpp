#include "em/models/classifier.hpp"

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/transforms.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_folder.hpp"

namespace em::models {
namespace fs = std::filesystem;

Classifier Classifier::create(const std::string& model_config, std::vector<std::string> labels, int64_t input_size) {
  Classifier c;
  build_parts(c, resolve_model_config<ResNetConfig>(model_config, Algo::classification), std::move(labels),
              model_config_name(model_config, Algo::classification));
  c.preprocessor = PreprocessorConfig::classification(input_size);
  return c;
}

Classifier Classifier::load(const fs::path& dir, bool channels_last) {
  Classifier c;
  const ModelFolder folder = load_parts(c, dir, Algo::classification, channels_last);
  if (!folder.has_preprocessor())
    log::warn("{}: absent; resizing to {}x{} with ImageNet mean/std", folder.preprocessor_path.string(),
              c.preprocessor.width, c.preprocessor.height);
  return c;
}

torch::Tensor Classifier::preprocess(const io::Image& image) const { return preprocess_image(preprocessor, image); }

torch::Tensor Classifier::logits(const torch::Tensor& pixel_values, bool bf16) const {
  return fp32_forward(*this, pixel_values, bf16).to(torch::kCPU);
}

}  // namespace em::models
