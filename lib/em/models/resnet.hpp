// ResNet for image classification, built from a config that maps 1:1 to Hugging Face's ResNetConfig (config.json),
// with submodules registered under HF's names (resnet.embedder..., resnet.encoder.stages.{s}.layers.{l}..., classifier.1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "em/models/config_fields.hpp"  // Activation
#include "em/models/layers.hpp"
#include "em/models/resnet_config.hpp"

namespace em::models {

// conv (no bias, "same" padding) -> BatchNorm -> activation: HF's ResNetConvLayer.
class ResNetConvLayerImpl : public torch::nn::Module {
 public:
  ResNetConvLayerImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
                      Activation activation);
  torch::Tensor forward(const torch::Tensor& x);

  Conv2d convolution{nullptr};
  torch::nn::BatchNorm2d normalization{nullptr};
  Activation activation;
};
TORCH_MODULE(ResNetConvLayer);

// 1x1 conv + BatchNorm projecting the residual when channels or stride change: HF's ResNetShortCut.
class ResNetShortCutImpl : public torch::nn::Module {
 public:
  ResNetShortCutImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

  Conv2d convolution{nullptr};
  torch::nn::BatchNorm2d normalization{nullptr};
};
TORCH_MODULE(ResNetShortCut);

// One residual block: HF's ResNetBasicLayer (two 3x3) or ResNetBottleNeckLayer (1x1, 3x3, 1x1 at out/4 width).
// Submodules: "shortcut" (only when in != out or stride != 1), "layer.{i}".
class ResNetResidualLayerImpl : public torch::nn::Module {
 public:
  ResNetResidualLayerImpl(const ResNetConfig& config, int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

  ResNetShortCut shortcut{nullptr};  // null = identity
  std::vector<ResNetConvLayer> convs;
  Activation activation;
};
TORCH_MODULE(ResNetResidualLayer);

// A stage of residual blocks ("layers.{l}"); the first block carries the stride.
class ResNetStageImpl : public torch::nn::Module {
 public:
  ResNetStageImpl(const ResNetConfig& config, int64_t in_channels, int64_t out_channels, int64_t stride,
                  int64_t depth);
  torch::Tensor forward(torch::Tensor x);

  std::vector<ResNetResidualLayer> blocks;
};
TORCH_MODULE(ResNetStage);

// HF's ResNetModel: "embedder.embedder" (7x7/2 conv layer) + max pool, "encoder.stages.{s}", global average pool.
class ResNetModelImpl : public torch::nn::Module {
 public:
  explicit ResNetModelImpl(const ResNetConfig& config);
  // pixel_values [N, num_channels, H, W] -> pooled features [N, hidden_sizes.back()].
  torch::Tensor forward(const torch::Tensor& pixel_values);
  // The feature map after every stage (for backbones): strides 4, 8, 16, 32 with the default config.
  std::vector<torch::Tensor> forward_stages(const torch::Tensor& pixel_values);

  ResNetConvLayer stem{nullptr};  // registered as "embedder.embedder"
  std::vector<ResNetStage> stages;  // registered as "encoder.stages.{s}"

 private:
  torch::Tensor embed(const torch::Tensor& pixel_values);
  int64_t num_channels_;
};
TORCH_MODULE(ResNetModel);

// HF's ResNetForImageClassification: "resnet" + "classifier.1" (Linear; index 0 is HF's Flatten).
// forward(pixel_values [N, C, H, W], any memory format, fp32 or under autocast) -> logits [N, num_labels].
class ResNetForImageClassificationImpl : public torch::nn::Module {
 public:
  explicit ResNetForImageClassificationImpl(ResNetConfig config);
  torch::Tensor forward(const torch::Tensor& pixel_values);
  const ResNetConfig& config() const { return config_; }

  ResNetModel resnet{nullptr};
  torch::nn::Linear classifier{nullptr};  // registered as "classifier.1"; null when num_labels == 0 (HF: Identity)

 private:
  ResNetConfig config_;
};
TORCH_MODULE(ResNetForImageClassification);

// HF's _init_weights: conv kaiming-normal (fan_out, relu), BatchNorm weight 1 / bias 0; Linear keeps torch's default.
void init_resnet_weights(torch::nn::Module& module);

}  // namespace em::models
