// A classification model as the tools use it: ResNet config + module + its preprocessing, created for training or
// loaded from a model folder (config.json, model.safetensors, preprocessor_config.json). One loader for em-eval,
// em-predict and em-serve.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/models/model_folder.hpp"
#include "em/models/preprocessor.hpp"
#include "em/models/resnet.hpp"

namespace em::models {

struct Classifier : ModelParts<ResNetConfig, ResNetForImageClassification, PreprocessorConfig> {
  // HF's base_model_prefix of the task model: --init also takes a checkpoint of the bare model
  // (ResNetModel: "embedder...").
  static constexpr const char* kBaseModelPrefix = "resnet";

  // A fresh model: `model_config` is a built-in name (resnet-18/34/50/101/152) or an HF config.json path.
  // Weights are initialised from the current torch seed.
  static Classifier create(const std::string& model_config, std::vector<std::string> labels, int64_t input_size);
  // A saved model folder (ours or an HF ResNetForImageClassification folder), loaded strictly, in eval mode.
  // channels_last: built channels-last and filled that way (prediction), instead of use_channels_last() after.
  static Classifier load(const std::filesystem::path& dir, bool channels_last = false);

  // One decoded image -> [3, height, width], exactly as in training (RGB, bilinear resize, rescale, normalize).
  torch::Tensor preprocess(const io::Image& image) const;
  // Eval-mode logits (fp32) for a batch, run on the module's device and returned on the CPU (every reader reads
  // them there: [N, labels] is small); the caller holds NoGradGuard and chooses bf16.
  torch::Tensor logits(const torch::Tensor& pixel_values, bool bf16) const;
};

}  // namespace em::models
