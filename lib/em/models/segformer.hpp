// SegFormer for semantic segmentation, built from a config that maps 1:1 to Hugging Face's SegformerConfig
// (config.json), with submodules registered under HF's names (segformer.encoder..., decode_head...).
#pragma once
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "em/models/config_fields.hpp"  // Activation
#include "em/models/segformer_config.hpp"

namespace em::models {

// Conv (kernel patch_size, stride, padding patch_size/2) + LayerNorm over channels: HF's
// SegformerOverlapPatchEmbeddings ("proj", "layer_norm").
class SegformerOverlapPatchEmbeddingsImpl : public torch::nn::Module {
 public:
  SegformerOverlapPatchEmbeddingsImpl(int64_t patch_size, int64_t stride, int64_t in_channels, int64_t hidden_size);
  // x [N, C, H, W] -> (tokens [N, h*w, hidden], h, w).
  std::tuple<torch::Tensor, int64_t, int64_t> forward(const torch::Tensor& x);

  torch::nn::Conv2d proj{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(SegformerOverlapPatchEmbeddings);

// Multi-head attention whose keys and values come from the map shrunk by an sr x sr strided conv + LayerNorm
// (when sr_ratio > 1): HF's SegformerAttention ("self.{query,key,value,sr,layer_norm}", "output.dense").
class SegformerAttentionImpl : public torch::nn::Module {
 public:
  SegformerAttentionImpl(const SegformerConfig& config, int64_t hidden_size, int64_t num_heads, int64_t sr_ratio);
  torch::Tensor forward(const torch::Tensor& tokens, int64_t height, int64_t width);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, dense{nullptr};
  torch::nn::Conv2d sr{nullptr};                // null when sr_ratio == 1
  torch::nn::LayerNorm sr_norm{nullptr};        // registered as "self.layer_norm"
  int64_t num_heads;
  double attention_dropout;
  double hidden_dropout;
};
TORCH_MODULE(SegformerAttention);

// Linear -> depthwise 3x3 conv on the token map -> activation -> Linear: HF's SegformerMixFFN
// ("dense1", "dwconv.dwconv", "dense2").
class SegformerMixFFNImpl : public torch::nn::Module {
 public:
  SegformerMixFFNImpl(const SegformerConfig& config, int64_t hidden_size, int64_t mlp_hidden_size);
  torch::Tensor forward(const torch::Tensor& tokens, int64_t height, int64_t width);

  torch::nn::Linear dense1{nullptr}, dense2{nullptr};
  torch::nn::Conv2d dwconv{nullptr};  // registered as "dwconv.dwconv"
  Activation activation;
  double hidden_dropout;
};
TORCH_MODULE(SegformerMixFFN);

// Pre-norm transformer layer with stochastic depth on both residual branches: HF's SegformerLayer
// ("layer_norm_1", "attention", "layer_norm_2", "mlp").
class SegformerLayerImpl : public torch::nn::Module {
 public:
  SegformerLayerImpl(const SegformerConfig& config, int64_t hidden_size, int64_t num_heads, double drop_path,
                     int64_t sr_ratio, int64_t mlp_ratio);
  torch::Tensor forward(const torch::Tensor& tokens, int64_t height, int64_t width);

  torch::nn::LayerNorm layer_norm_1{nullptr}, layer_norm_2{nullptr};
  SegformerAttention attention{nullptr};
  SegformerMixFFN mlp{nullptr};
  double drop_path;  // this layer's stochastic depth probability (0 = none)
};
TORCH_MODULE(SegformerLayer);

// The Mix Transformer encoder: HF's SegformerModel ("encoder.patch_embeddings.{i}", "encoder.block.{i}.{j}",
// "encoder.layer_norm.{i}").
class SegformerModelImpl : public torch::nn::Module {
 public:
  explicit SegformerModelImpl(const SegformerConfig& config);
  // pixel_values [N, num_channels, H, W] -> the map after every stage, [N, hidden_sizes[i], H/4, W/4] ... /32 with
  // the default strides. Channels-last inputs give channels-last maps.
  std::vector<torch::Tensor> forward(const torch::Tensor& pixel_values);

  std::vector<SegformerOverlapPatchEmbeddings> patch_embeddings;
  std::vector<std::vector<SegformerLayer>> blocks;
  std::vector<torch::nn::LayerNorm> stage_norms;

 private:
  int64_t num_channels_;
};
TORCH_MODULE(SegformerModel);

// The all-MLP decode head: HF's SegformerDecodeHead ("linear_c.{i}.proj", "linear_fuse", "batch_norm",
// "classifier"). Each stage is projected to decoder_hidden_size, upsampled bilinearly to the first stage's size,
// concatenated last stage first, fused by a 1x1 conv + BatchNorm + ReLU and classified by a 1x1 conv.
class SegformerDecodeHeadImpl : public torch::nn::Module {
 public:
  explicit SegformerDecodeHeadImpl(const SegformerConfig& config);
  torch::Tensor forward(const std::vector<torch::Tensor>& stages);

  std::vector<torch::nn::Linear> linear_c;  // registered as "linear_c.{i}.proj"
  torch::nn::Conv2d linear_fuse{nullptr};
  torch::nn::BatchNorm2d batch_norm{nullptr};
  torch::nn::Conv2d classifier{nullptr};
  double classifier_dropout;
};
TORCH_MODULE(SegformerDecodeHead);

// HF's SegformerForSemanticSegmentation: "segformer" + "decode_head".
// forward(pixel_values [N, C, H, W], any memory format, fp32 or under autocast) -> logits [N, num_labels, h, w] at
// the first stage's resolution (H/4 x W/4 with the default strides; ceil for sizes not divisible by 4), not
// upsampled: use upsample_logits() for the input size and segmentation_loss() for training.
class SegformerForSemanticSegmentationImpl : public torch::nn::Module {
 public:
  explicit SegformerForSemanticSegmentationImpl(SegformerConfig config);
  torch::Tensor forward(const torch::Tensor& pixel_values);
  const SegformerConfig& config() const { return config_; }

  SegformerModel segformer{nullptr};
  SegformerDecodeHead decode_head{nullptr};

 private:
  SegformerConfig config_;
};
TORCH_MODULE(SegformerForSemanticSegmentation);

// HF's _init_weights: Linear/Conv2d weights N(0, initializer_range), biases 0; LayerNorm weight 1, bias 0
// (BatchNorm keeps torch's 1/0).
void init_segformer_weights(torch::nn::Module& module, double initializer_range);

// Logits [N, L, h, w] bilinearly resized (align_corners false, as HF and its image processor do) to height x width.
torch::Tensor upsample_logits(const torch::Tensor& logits, int64_t height, int64_t width);

// The training loss of HF's SegformerForSemanticSegmentation: logits upsampled bilinearly (align_corners false) to
// the labels' size, then cross-entropy averaged over the pixels whose label is not ignore_index. labels: int64
// [N, H, W] with values in 0..L-1 or ignore_index. With one label (L == 1), HF's binary loss: BCE-with-logits
// averaged over all pixels, ignored ones counting 0. A batch with no valid pixel gives 0 (HF: NaN), so one fully
// ignored crop cannot poison training. Computed in fp32 under autocast.
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& labels, int64_t ignore_index = 255);

}  // namespace em::models
