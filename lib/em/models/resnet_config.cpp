#include "em/models/resnet_config.hpp"

#include "em/core/error.hpp"
#include "em/models/config_fields.hpp"

#include <set>

#include <fmt/ranges.h>

namespace em::models {

void ResNetConfig::set_labels(std::vector<std::string> labels) {
  std::set<std::string> unique(labels.begin(), labels.end());
  if (unique.size() != labels.size()) fail("resnet config: labels must be distinct, got [{}]", fmt::join(labels, ", "));
  id2label = std::move(labels);
}

void ResNetConfig::validate(const std::string& what) const {
  if (num_channels < 1) fail("{}: field \"num_channels\": expected >= 1, got {}", what, num_channels);
  if (embedding_size < 1) fail("{}: field \"embedding_size\": expected >= 1, got {}", what, embedding_size);
  if (hidden_sizes.empty() || hidden_sizes.size() != depths.size())
    fail("{}: fields \"hidden_sizes\" ({} values) and \"depths\" ({} values) must be non-empty and of equal length",
         what, hidden_sizes.size(), depths.size());
  for (size_t i = 0; i < hidden_sizes.size(); ++i) {
    if (depths[i] < 1) fail("{}: field \"depths\"[{}]: expected >= 1, got {}", what, i, depths[i]);
    const int64_t min_width = layer_type == "bottleneck" ? 4 : 1;  // a bottleneck runs at width/4
    if (hidden_sizes[i] < min_width)
      fail("{}: field \"hidden_sizes\"[{}]: expected >= {} for layer_type \"{}\", got {}", what, i, min_width,
           layer_type, hidden_sizes[i]);
  }
  if (layer_type != "bottleneck" && layer_type != "basic")
    fail("{}: field \"layer_type\": expected \"bottleneck\" or \"basic\", got \"{}\"", what, layer_type);
  parse_activation(hidden_act, what);
  // An upper bound of the weights: each block's convolutions hold at most 18 width^2 (a basic block's two 3x3),
  // plus the shortcut, the stem and the classifier.
  double params = 49.0 * static_cast<double>(num_channels) * static_cast<double>(embedding_size);
  double in = static_cast<double>(embedding_size);
  for (size_t i = 0; i < hidden_sizes.size(); ++i) {
    const double w = static_cast<double>(hidden_sizes[i]);
    params += static_cast<double>(depths[i]) * (18.0 * w * w + 2.0 * in * w) + in * w;
    in = w;
  }
  params += in * static_cast<double>(id2label.size());
  config::check_parameter_budget(params, what);
  std::set<std::string> unique(id2label.begin(), id2label.end());
  if (unique.size() != id2label.size()) fail("{}: field \"id2label\": labels must be distinct", what);
}

ResNetConfig ResNetConfig::from_json(const io::Json& json, const std::string& what) {
  config::check_model_type(json, "resnet", "ResNet", {"ResNetForImageClassification", "ResNetModel", "ResNetBackbone"},
                           what);

  ResNetConfig c;
  c.num_channels = config::int_field(json, "num_channels", c.num_channels, 1, what);
  c.embedding_size = config::int_field(json, "embedding_size", c.embedding_size, 1, what);
  c.hidden_sizes = config::positive_ints_field(json, "hidden_sizes", c.hidden_sizes, what);
  c.depths = config::positive_ints_field(json, "depths", c.depths, what);
  c.layer_type = config::string_field(json, "layer_type", c.layer_type, what);
  c.hidden_act = config::string_field(json, "hidden_act", c.hidden_act, what);
  c.downsample_in_first_stage =
      config::bool_field(json, "downsample_in_first_stage", c.downsample_in_first_stage, what);
  c.downsample_in_bottleneck = config::bool_field(json, "downsample_in_bottleneck", c.downsample_in_bottleneck, what);

  c.id2label = config::read_labels(json, c.id2label, /*min_labels=*/0, what);
  c.validate(what);
  return c;
}

io::Json ResNetConfig::to_json() const {
  return io::Json{{"architectures", {"ResNetForImageClassification"}},
                  {"model_type", "resnet"},
                  {"num_channels", num_channels},
                  {"embedding_size", embedding_size},
                  {"hidden_sizes", hidden_sizes},
                  {"depths", depths},
                  {"layer_type", layer_type},
                  {"hidden_act", hidden_act},
                  {"downsample_in_first_stage", downsample_in_first_stage},
                  {"downsample_in_bottleneck", downsample_in_bottleneck},
                  {"id2label", config::id2label_json(id2label)},
                  {"label2id", config::label2id_json(id2label)},
                  {"torch_dtype", "float32"}};
}

std::vector<std::string> ResNetConfig::builtin_names() {
  return {"resnet-18", "resnet-34", "resnet-50", "resnet-101", "resnet-152"};
}

ResNetConfig ResNetConfig::builtin(const std::string& name) {
  // The values of huggingface.co/microsoft/resnet-*/config.json (embedding 64, stride-1 first stage).
  ResNetConfig c;
  if (name == "resnet-18" || name == "resnet-34") {
    c.layer_type = "basic";
    c.hidden_sizes = {64, 128, 256, 512};
    c.depths = name == "resnet-18" ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
  } else if (name == "resnet-50" || name == "resnet-101" || name == "resnet-152") {
    c.layer_type = "bottleneck";
    c.hidden_sizes = {256, 512, 1024, 2048};
    c.depths = name == "resnet-50"    ? std::vector<int64_t>{3, 4, 6, 3}
               : name == "resnet-101" ? std::vector<int64_t>{3, 4, 23, 3}
                                      : std::vector<int64_t>{3, 8, 36, 3};
  } else {
    usage_fail("unknown ResNet model \"{}\" (built-in: {})", name, fmt::join(builtin_names(), ", "));
  }
  return c;
}

}  // namespace em::models
