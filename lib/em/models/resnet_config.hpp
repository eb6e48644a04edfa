// ResNet's config.json: HF transformers' ResNetConfig read, checked and written, with the built-in architectures.
// No LibTorch here (the fuzz build compiles it beside em_base); the modules are in resnet.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/io/json.hpp"

namespace em::models {

// HF transformers' ResNetConfig, field for field. model_type is always "resnet" and architectures
// ["ResNetForImageClassification"]; labels are id2label in id order (label2id is derived).
struct ResNetConfig {
  int64_t num_channels = 3;
  int64_t embedding_size = 64;
  std::vector<int64_t> hidden_sizes{256, 512, 1024, 2048};
  std::vector<int64_t> depths{3, 4, 6, 3};
  std::string layer_type = "bottleneck";  // "bottleneck" (resnet-50 and up) or "basic" (resnet-18/34)
  std::string hidden_act = "relu";
  bool downsample_in_first_stage = false;
  bool downsample_in_bottleneck = false;  // true: the stride sits in the first 1x1 conv instead of the 3x3
  std::vector<std::string> id2label{"LABEL_0", "LABEL_1"};  // HF's default when a config names no labels

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  // Replaces the labels (class id = position). Throws on duplicates: label2id must be a function.
  void set_labels(std::vector<std::string> labels);
  // Checks every field; `what` (a path or "resnet config") prefixes the messages. Throws em::Error.
  void validate(const std::string& what) const;

  // Reads an HF config.json object (microsoft/resnet-*, ours, the parity fixtures). Unknown fields that HF's
  // PretrainedConfig carries (torch_dtype, transformers_version, out_features...) are ignored; a wrong type or value
  // of a ResNet field is an error naming the field, the value and what is valid.
  static ResNetConfig from_json(const io::Json& json, const std::string& what);
  // The HF-compatible config.json object (transformers' AutoConfig/AutoModelForImageClassification load it).
  io::Json to_json() const;

  // Architectures of microsoft/resnet-{18,34,50,101,152} (labels left at the default; set them with set_labels).
  static ResNetConfig builtin(const std::string& name);
  static std::vector<std::string> builtin_names();
};

}  // namespace em::models
