// DETR for object detection, built from a config that maps 1:1 to Hugging Face's DetrConfig (config.json), with
// submodules under DetrForObjectDetection's names (timm-named ResNet backbone as in facebook/detr-resnet-50).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "em/models/detr_config.hpp"
#include "em/models/resnet.hpp"

namespace em::models {

// The original DETR's FrozenBatchNorm2d: BatchNorm whose statistics and affine transform are fixed buffers (weight,
// bias, running_mean, running_var; no num_batches_tracked): y = x * s + (b - mean * s), s = w * rsqrt(var + 1e-5).
class FrozenBatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit FrozenBatchNorm2dImpl(int64_t num_features);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias, running_mean, running_var;
};
TORCH_MODULE(FrozenBatchNorm2d);

// A timm ResNet block: BasicBlock (conv1/bn1, conv2/bn2) or Bottleneck (+ conv3/bn3, width x 4 out), with a
// "downsample" (0: 1x1 conv, 1: frozen BN) when the width or the stride changes.
class DetrResNetBlockImpl : public torch::nn::Module {
 public:
  DetrResNetBlockImpl(bool bottleneck, int64_t in_channels, int64_t planes, int64_t stride, int64_t first_dilation,
                      int64_t dilation);
  torch::Tensor forward(const torch::Tensor& x);

  std::vector<std::pair<torch::nn::Conv2d, FrozenBatchNorm2d>> convs;  // conv{k+1}, bn{k+1}
  torch::nn::Conv2d downsample_conv{nullptr};                          // null = identity shortcut
  FrozenBatchNorm2d downsample_bn{nullptr};
};
TORCH_MODULE(DetrResNetBlock);

// timm's resnet{18,34,50,101,152} as DETR uses it (features_only, last stage's map): conv1, bn1, ReLU, 3x3/2 max
// pool, layer1..layer4. Registered in DetrModel as backbone.conv_encoder.model.
class DetrResNetBackboneImpl : public torch::nn::Module {
 public:
  explicit DetrResNetBackboneImpl(const DetrConfig& config);
  // pixel_values [N, C, H, W] -> last stage's feature map [N, backbone_channels, ceil(H/32), ceil(W/32)] (/16 with
  // dilation).
  torch::Tensor forward(const torch::Tensor& pixel_values);

  torch::nn::Conv2d conv1{nullptr};
  FrozenBatchNorm2d bn1{nullptr};
  std::vector<std::vector<DetrResNetBlock>> stages;  // layer{s+1}.{j}
};
TORCH_MODULE(DetrResNetBackbone);

// HF's DetrAttention: multi-head attention whose queries and keys get position embeddings added before projection
// (values do not). Submodules k_proj, v_proj, q_proj, out_proj.
class DetrAttentionImpl : public torch::nn::Module {
 public:
  DetrAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout);
  // hidden [N, T, D]; query_pos like hidden or undefined. Self-attention when key_value is undefined (keys get
  // query_pos); otherwise cross-attention on key_value [N, S, D] with key_pos added to its keys. key_padding [N, S]
  // bool, true = ignore this key, or undefined.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& query_pos, const torch::Tensor& key_value,
                        const torch::Tensor& key_pos, const torch::Tensor& key_padding);

  torch::nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads;
  double dropout;
};
TORCH_MODULE(DetrAttention);

// Post-norm encoder layer: self_attn (+ position embeddings on q/k), self_attn_layer_norm, fc1/fc2, final_layer_norm.
class DetrEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit DetrEncoderLayerImpl(const DetrConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& pos, const torch::Tensor& key_padding);

  DetrAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
  Activation activation;
  double dropout, activation_dropout;
};
TORCH_MODULE(DetrEncoderLayer);

// Post-norm decoder layer: self_attn over the queries, encoder_attn (cross-attention on the encoder output), FFN; each
// followed by its LayerNorm (self_attn_layer_norm, encoder_attn_layer_norm, final_layer_norm).
class DetrDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DetrDecoderLayerImpl(const DetrConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& query_pos, const torch::Tensor& memory,
                        const torch::Tensor& memory_pos, const torch::Tensor& memory_padding);

  DetrAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  DetrAttention encoder_attn{nullptr};
  torch::nn::LayerNorm encoder_attn_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
  Activation activation;
  double dropout, activation_dropout;
};
TORCH_MODULE(DetrDecoderLayer);

// What DetrModel hands to the heads.
struct DetrDecoderOutput {
  torch::Tensor last_hidden_state;  // [N, Q, d_model], after decoder.layernorm
  // With auxiliary_loss: every decoder layer's output after decoder.layernorm, [L, N, Q, d_model] (HF's
  // intermediate_hidden_states); undefined otherwise.
  torch::Tensor intermediate_hidden_states;
};

// HF's DetrModel: backbone.conv_encoder.model (frozen-BN ResNet), the mask's position embedding, input_projection
// (1x1 conv to d_model), query_position_embeddings, encoder.layers.{i}, decoder.layers.{i} + decoder.layernorm.
class DetrModelImpl : public torch::nn::Module {
 public:
  explicit DetrModelImpl(const DetrConfig& config);
  DetrDecoderOutput forward(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask);
  // The padding mask at the feature map's size, true = valid: F.interpolate(pixel_mask[None].float(), size) (nearest),
  // then bool, as HF's DetrConvEncoder and the original backbone do.
  static torch::Tensor feature_mask(const torch::Tensor& pixel_mask, int64_t height, int64_t width);
  // Position embedding of a feature mask [N, h, w] (true = valid) as [N, h*w, d_model], fp32.
  torch::Tensor position_embedding(const torch::Tensor& mask) const;

  DetrResNetBackbone conv_encoder{nullptr};  // registered as backbone.conv_encoder.model
  torch::nn::Embedding row_embeddings{nullptr}, column_embeddings{nullptr};  // "learned" only
  torch::nn::Conv2d input_projection{nullptr};
  torch::nn::Embedding query_position_embeddings{nullptr};
  std::vector<DetrEncoderLayer> encoder_layers;  // encoder.layers.{i}
  std::vector<DetrDecoderLayer> decoder_layers;  // decoder.layers.{i}
  torch::nn::LayerNorm decoder_layernorm{nullptr};  // decoder.layernorm

 private:
  DetrConfig config_;
};
TORCH_MODULE(DetrModel);

// HF's DetrMLPPredictionHead: layers.{0,1,2}, ReLU between them.
class DetrMLPPredictionHeadImpl : public torch::nn::Module {
 public:
  DetrMLPPredictionHeadImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);

  std::vector<torch::nn::Linear> layers;
};
TORCH_MODULE(DetrMLPPredictionHead);

// Class logits and boxes of one decoder layer.
struct DetrPredictions {
  torch::Tensor logits;      // [N, Q, num_labels + 1], "no object" last
  torch::Tensor pred_boxes;  // [N, Q, 4]: sigmoid (cx, cy, w, h), relative to the padded input
};

struct DetrOutput : DetrPredictions {
  // With config.auxiliary_loss: the predictions of decoder layers 0..L-2 (HF's auxiliary_outputs), for the
  // auxiliary losses. Empty otherwise.
  std::vector<DetrPredictions> auxiliary_outputs;
};

// HF's DetrForObjectDetection: "model" + class_labels_classifier (num_labels + 1) + bbox_predictor (3-layer MLP).
// conv1 and layer1 of the backbone do not train (requires_grad false), as in the original and in HF; the frozen
// BatchNorms are buffers. Works in fp32 and under em::tensor::Bf16Autocast, with NCHW or channels-last input.
class DetrForObjectDetectionImpl : public torch::nn::Module {
 public:
  explicit DetrForObjectDetectionImpl(DetrConfig config);
  // pixel_values [N, num_channels, H, W]; pixel_mask [N, H, W] (any integer or bool type, 1 = valid pixel, 0 = padding)
  // or undefined (all valid).
  DetrOutput forward(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask = {});
  const DetrConfig& config() const { return config_; }
  // Full names of the backbone's trainable parameters (model.backbone.conv_encoder.model.layer{2,3,4}...): the
  // parameter group that trains at 0.1x the learning rate.
  std::vector<std::string> backbone_parameter_names() const;

  DetrModel model{nullptr};
  torch::nn::Linear class_labels_classifier{nullptr};
  DetrMLPPredictionHead bbox_predictor{nullptr};

 private:
  DetrConfig config_;
};
TORCH_MODULE(DetrForObjectDetection);

// The original DETR's initialisation without its ImageNet backbone: backbone convs kaiming-normal (fan_out, ReLU) as
// torchvision/timm build them, frozen BatchNorms the identity, transformer matrices xavier-uniform
// (Transformer._reset_parameters), heads, input projection and queries with torch's defaults. Run by the constructor.
void init_detr_weights(DetrForObjectDetectionImpl& model);

}  // namespace em::models
