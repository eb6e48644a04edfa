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

#include "em/io/json.hpp"
#include "em/models/config_fields.hpp"  // Activation

namespace em::models {

// HF transformers' SegformerConfig, field for field (defaults are HF's, i.e. nvidia/segformer-b0). model_type is
// always "segformer" and architectures ["SegformerForSemanticSegmentation"]; labels are id2label in id order
// (label2id is derived). Every per-stage list has num_encoder_blocks values.
struct SegformerConfig {
  int64_t num_channels = 3;
  int64_t num_encoder_blocks = 4;
  std::vector<int64_t> depths{2, 2, 2, 2};               // transformer layers per stage
  std::vector<int64_t> sr_ratios{8, 4, 2, 1};            // attention keys/values come from an sr x sr strided conv
  std::vector<int64_t> hidden_sizes{32, 64, 160, 256};   // width of each stage
  std::vector<int64_t> patch_sizes{7, 3, 3, 3};          // overlapping patch embedding kernel (padding size/2)
  std::vector<int64_t> strides{4, 2, 2, 2};              // patch embedding stride
  std::vector<int64_t> num_attention_heads{1, 2, 5, 8};  // must divide hidden_sizes
  std::vector<int64_t> mlp_ratios{4, 4, 4, 4};           // Mix-FFN width = hidden * ratio
  std::string hidden_act = "gelu";                       // exact erf GELU, as HF's ACT2FN["gelu"]
  double hidden_dropout_prob = 0.0;
  double attention_probs_dropout_prob = 0.0;
  double classifier_dropout_prob = 0.1;  // before the decode head's classifier
  double initializer_range = 0.02;       // std of the normal init of Linear/Conv2d weights
  double drop_path_rate = 0.1;           // stochastic depth, rising linearly from 0 over all layers
  // Kept for the round trip only: HF's modeling builds every LayerNorm with torch's default eps 1e-5 whatever this
  // says, and so do we (the parity fixtures are HF's outputs).
  double layer_norm_eps = 1e-6;
  int64_t decoder_hidden_size = 256;
  int64_t semantic_loss_ignore_index = 255;
  // HF's deprecated switch (false in the encoder-only nvidia/mit-b* configs). The segmentation model always reshapes
  // the last stage to a map, which is what HF's decode head needs; the value is kept for the round trip.
  bool reshape_last_stage = true;
  std::vector<std::string> id2label{"LABEL_0", "LABEL_1"};  // HF's default when a config names no labels

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  // Replaces the labels (class id = position). Throws on duplicates: label2id must be a function.
  void set_labels(std::vector<std::string> labels);
  // Checks every field; `what` (a path or "segformer config") prefixes the messages. Throws em::Error.
  void validate(const std::string& what) const;

  // Reads an HF config.json object (nvidia/segformer-*, nvidia/mit-*, ours, the parity fixture). Fields HF's
  // PretrainedConfig carries (torch_dtype, transformers_version, ...) are ignored; a wrong type or value of a
  // SegFormer field is an error naming the field, the value and what is valid.
  static SegformerConfig from_json(const io::Json& json, const std::string& what);
  // The HF-compatible config.json object (transformers' AutoConfig / SegformerForSemanticSegmentation load it).
  io::Json to_json() const;

  // Architectures of nvidia/mit-b0..b5 (= nvidia/segformer-b*-finetuned-ade-512-512), labels left at the default.
  static SegformerConfig builtin(const std::string& name);
  static std::vector<std::string> builtin_names();
};

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
