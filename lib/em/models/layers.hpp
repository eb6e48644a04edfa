// Layers whose weights are allocated without being initialised when a checkpoint is about to fill them: a model
// loaded for prediction does not draw 25M random numbers only to overwrite them. Built for training, they
// initialise exactly as LibTorch's own layers do (same formulas, same random stream), so training is unchanged.
// Also the activation and LayerNorm helpers the models share.
#pragma once
#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "em/models/config_fields.hpp"  // Activation

namespace em::models {

// While one lives (per thread), layers built here, and the models' own weight initialisers, leave their weights
// uninitialised (torch::empty): for modules whose every tensor is loaded next (load_model_weights_strict).
class SkipInit {
 public:
  SkipInit();
  ~SkipInit();
  SkipInit(const SkipInit&) = delete;
  SkipInit& operator=(const SkipInit&) = delete;

 private:
  bool previous_;
};
bool skip_init();

struct Conv2dSpec {
  int64_t in_channels = 0, out_channels = 0, kernel_size = 1;
  int64_t stride = 1, padding = 0;
  bool bias = true;
};

// torch::nn::Conv2d's parameters ("weight" [out, in, k, k], optional "bias") and forward (zero padding), with
// torch::nn::Conv2d's initialisation (kaiming_uniform_ a = sqrt(5), bias U(+-1/sqrt(fan_in))) unless skip_init().
class Conv2dImpl : public torch::nn::Cloneable<Conv2dImpl> {
 public:
  explicit Conv2dImpl(Conv2dSpec spec);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  Conv2dSpec spec;
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv2d);

// HF's ACT2FN[name] for a parsed activation (config_fields.hpp's parse_activation).
torch::Tensor activate(const torch::Tensor& x, Activation act);

// LayerNorm in its parameters' dtype: under CPU autocast LibTorch 1.13 hands bf16 activations to layer_norm
// unconverted, and its kernel refuses fp32 weights with bf16 input. Normalising in fp32 is what CUDA autocast does
// and the precise choice; outside autocast the dtypes agree and nothing is converted.
torch::Tensor layer_norm_in_weight_dtype(torch::nn::LayerNorm& norm, const torch::Tensor& x);

}  // namespace em::models
