// DETR's config.json: HF transformers' DetrConfig read, checked and written, with the built-in architectures and
// the timm ResNet backbones it may name. No LibTorch here (the fuzz build compiles it beside em_base); detr.hpp has
// the modules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/io/json.hpp"

namespace em::models {

// HF transformers' DetrConfig, field for field (model_type "detr", architectures ["DetrForObjectDetection"]), plus
// `threshold`, the score threshold of post-processing, which HF ignores. Labels are id2label in id order ("no object"
// is not a label: the class head has num_labels() + 1 outputs, the last one "no object").
struct DetrConfig {
  // Backbone: a timm ResNet ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152") with frozen BatchNorm.
  bool use_timm_backbone = true;  // only true is supported (HF's AutoBackbone path has other parameter names)
  std::string backbone = "resnet50";
  bool use_pretrained_backbone = false;  // HF's default is true (downloads timm weights); emkit never downloads
  bool dilation = false;                 // true: the last stage dilated instead of strided (DETR-DC5, stride 16)
  int64_t num_channels = 3;
  // Transformer.
  int64_t num_queries = 100;
  int64_t d_model = 256;
  int64_t encoder_layers = 6;
  int64_t decoder_layers = 6;
  int64_t encoder_attention_heads = 8;
  int64_t decoder_attention_heads = 8;
  int64_t encoder_ffn_dim = 2048;
  int64_t decoder_ffn_dim = 2048;
  std::string activation_function = "relu";
  std::string position_embedding_type = "sine";  // "sine" (normalised by the mask) or "learned" (50 x 50 tables)
  double dropout = 0.1;
  double attention_dropout = 0.0;
  double activation_dropout = 0.0;
  double encoder_layerdrop = 0.0;
  double decoder_layerdrop = 0.0;
  double init_std = 0.02;
  double init_xavier_std = 1.0;
  // Training: auxiliary decoder losses, Hungarian matching costs and loss weights (SetCriterion).
  bool auxiliary_loss = false;
  double class_cost = 1;
  double bbox_cost = 5;
  double giou_cost = 2;
  double bbox_loss_coefficient = 5;
  double giou_loss_coefficient = 2;
  double eos_coefficient = 0.1;
  double mask_loss_coefficient = 1;  // DetrForSegmentation only; kept for HF round trips
  double dice_loss_coefficient = 1;
  // Post-processing (emkit's field).
  double threshold = 0.5;
  std::vector<std::string> id2label{"LABEL_0", "LABEL_1"};  // HF's default when a config names no labels

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  // Output width of the backbone's last stage (512 for resnet18/34, 2048 for the bottleneck ResNets).
  int64_t backbone_channels() const;
  // Replaces the labels (class id = position). Throws on duplicates: label2id must be a function.
  void set_labels(std::vector<std::string> labels);
  // Checks every field; `what` (a path or "detr config") prefixes the messages. Throws em::Error.
  void validate(const std::string& what) const;

  // Reads an HF config.json object (facebook/detr-*, ours, the parity fixture). Fields HF's PretrainedConfig carries
  // (torch_dtype, transformers_version, num_hidden_layers, backbone_config: null, ...) are accepted; a wrong type or
  // value of a DETR field is an error naming the field, the value and what is valid.
  static DetrConfig from_json(const io::Json& json, const std::string& what);
  // The HF-compatible config.json object (transformers' DetrForObjectDetection.from_pretrained loads it; timm must be
  // installed there, as for facebook/detr-resnet-50).
  io::Json to_json() const;

  // Built-in architectures (labels left at the default; set them with set_labels):
  //   detr-resnet-50 (default), detr-resnet-101, detr-resnet-50-dc5, detr-resnet-101-dc5: facebook/detr-* as on the Hub,
  //   detr-resnet-18, detr-resnet-34: the same transformer on a smaller backbone,
  //   detr-resnet-18-tiny: resnet18, d_model 64, 2+2 layers, 4 heads, ffn 256, 20 queries (tests, quick runs).
  // All built-ins set auxiliary_loss true (the DETR recipe trains with auxiliary decoder losses).
  static DetrConfig builtin(const std::string& name);
  static std::vector<std::string> builtin_names();
};

namespace detr {

// The backbones a DetrConfig may name ("resnet18" ... "resnet152"); the config checks the name, the backbone module
// (detr.cpp) builds from it.
const std::vector<std::string>& backbone_names();
// Blocks per stage of timm's (= torchvision's) ResNets, and whether they are bottlenecks.
std::vector<int64_t> resnet_depths(const std::string& name);
bool resnet_bottleneck(const std::string& name);

}  // namespace detr
}  // namespace em::models
