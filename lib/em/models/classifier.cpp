#include "em/models/classifier.hpp"

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/transforms.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_io.hpp"

namespace em::models {
namespace fs = std::filesystem;

namespace {
ResNetConfig config_from_name_or_path(const std::string& model_config) {
  if (model_config.empty()) return ResNetConfig::builtin("resnet-50");
  std::error_code ec;
  if (fs::exists(model_config, ec)) {
    fs::path p = model_config;
    if (fs::is_directory(p, ec)) p /= "config.json";
    return ResNetConfig::from_json(io::read_json_file(p.string()), p.string());
  }
  auto names = ResNetConfig::builtin_names();
  if (std::find(names.begin(), names.end(), model_config) == names.end()) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    usage_fail("--model_config: '{}' is neither a config.json file nor a built-in classification model ({})",
               model_config, all);
  }
  return ResNetConfig::builtin(model_config);
}

}  // namespace

Classifier Classifier::create(const std::string& model_config, std::vector<std::string> labels, int64_t input_size) {
  Classifier c;
  c.config = config_from_name_or_path(model_config);
  c.config.set_labels(std::move(labels));
  c.config.validate(model_config.empty() ? "resnet-50" : model_config);
  c.model = ResNetForImageClassification(c.config);
  c.preprocessor = PreprocessorConfig::classification(input_size);
  return c;
}

Classifier Classifier::load(const fs::path& dir, bool channels_last) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("{}: not a model folder (expected config.json, model.safetensors, preprocessor_config.json)", dir.string());
  Classifier c;
  fs::path config_path = dir / "config.json";
  io::Json config = io::read_json_file(config_path.string());
  if (config.value("model_type", std::string()) != "resnet")
    fail("{}: model_type '{}' is not a classification model (expected \"resnet\")", config_path.string(),
         config.value("model_type", std::string("?")));
  c.config = ResNetConfig::from_json(config, config_path.string());
  {
    SkipInit every_tensor_is_loaded_next;
    c.model = ResNetForImageClassification(c.config);
  }
  load_model_weights_strict(*c.model, dir, channels_last);
  c.channels_last = channels_last;
  fs::path pre_path = dir / "preprocessor_config.json";
  if (fs::exists(pre_path, ec)) {
    c.preprocessor = PreprocessorConfig::read(pre_path.string());
  } else {
    log::warn("{}: absent; resizing to {}x{} with ImageNet mean/std", pre_path.string(), c.preprocessor.width,
              c.preprocessor.height);
  }
  c.model->eval();
  return c;
}

void Classifier::save(const fs::path& dir) const { save_model_dir(dir, config.to_json(), *model, preprocessor.to_json()); }

torch::Tensor Classifier::preprocess(const io::Image& image) const { return preprocess_image(preprocessor, image); }

torch::Tensor Classifier::logits(const torch::Tensor& pixel_values, bool bf16) const {
  torch::Tensor x = channels_last ? pixel_values.contiguous(at::MemoryFormat::ChannelsLast) : pixel_values;
  tensor::Bf16Autocast autocast(bf16);
  ResNetForImageClassification shared = model;  // a holder copy shares the module; forward is not const
  return shared->forward(x).to(torch::kFloat32);
}

void Classifier::use_channels_last() {
  to_channels_last(*model);
  channels_last = true;
}

}  // namespace em::models
