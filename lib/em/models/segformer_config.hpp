// SegFormer's config.json: HF transformers' SegformerConfig read, checked and written, with the built-in
// architectures. No LibTorch here (the fuzz build compiles it beside em_base); the modules are in segformer.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/io/json.hpp"

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

}  // namespace em::models
