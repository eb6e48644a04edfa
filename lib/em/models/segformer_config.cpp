#include "em/models/segformer_config.hpp"

#include "em/core/error.hpp"
#include "em/models/config_fields.hpp"

#include <cmath>
#include <set>

#include <fmt/ranges.h>

namespace em::models {

void SegformerConfig::set_labels(std::vector<std::string> labels) {
  std::set<std::string> unique(labels.begin(), labels.end());
  if (unique.size() != labels.size())
    fail("segformer config: labels must be distinct, got [{}]", fmt::join(labels, ", "));
  id2label = std::move(labels);
}

void SegformerConfig::validate(const std::string& what) const {
  if (num_channels < 1) fail("{}: field \"num_channels\": expected >= 1, got {}", what, num_channels);
  if (num_encoder_blocks < 1)
    fail("{}: field \"num_encoder_blocks\": expected >= 1, got {}", what, num_encoder_blocks);
  const auto n = static_cast<size_t>(num_encoder_blocks);
  const std::pair<const char*, const std::vector<int64_t>*> lists[] = {
      {"depths", &depths},       {"sr_ratios", &sr_ratios},
      {"hidden_sizes", &hidden_sizes}, {"patch_sizes", &patch_sizes},
      {"strides", &strides},     {"num_attention_heads", &num_attention_heads},
      {"mlp_ratios", &mlp_ratios}};
  for (const auto& [key, list] : lists) {
    if (list->size() != n)
      fail("{}: field \"{}\" has {} values [{}] but \"num_encoder_blocks\" is {} (one value per stage)", what, key,
           list->size(), fmt::join(*list, ", "), num_encoder_blocks);
    for (size_t i = 0; i < n; ++i)
      if ((*list)[i] < 1) fail("{}: field \"{}\"[{}]: expected >= 1, got {}", what, key, i, (*list)[i]);
  }
  for (size_t i = 0; i < n; ++i)
    if (hidden_sizes[i] % num_attention_heads[i] != 0)
      fail("{}: field \"num_attention_heads\"[{}] = {} does not divide \"hidden_sizes\"[{}] = {}", what, i,
           num_attention_heads[i], i, hidden_sizes[i]);
  parse_activation(hidden_act, what);
  const std::pair<const char*, double> probabilities[] = {
      {"hidden_dropout_prob", hidden_dropout_prob},
      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
      {"classifier_dropout_prob", classifier_dropout_prob},
      {"drop_path_rate", drop_path_rate}};
  for (const auto& [key, p] : probabilities)
    if (!(p >= 0.0 && p < 1.0)) fail("{}: field \"{}\": expected a probability in [0, 1), got {}", what, key, p);
  if (!(initializer_range >= 0.0) || !std::isfinite(initializer_range))
    fail("{}: field \"initializer_range\": expected a finite number >= 0, got {}", what, initializer_range);
  if (!(layer_norm_eps > 0.0) || !std::isfinite(layer_norm_eps))
    fail("{}: field \"layer_norm_eps\": expected a finite number > 0, got {}", what, layer_norm_eps);
  if (decoder_hidden_size < 1)
    fail("{}: field \"decoder_hidden_size\": expected >= 1, got {}", what, decoder_hidden_size);
  if (id2label.empty()) fail("{}: field \"id2label\": a segmentation model needs at least one label", what);
  // An upper bound of the weights: per stage the patch embedding (k^2 in h), per layer attention (4 h^2 + the
  // reduction conv sr^2 h^2) and the Mix-FFN (2 ratio h^2 + its 3x3 depthwise conv); the decoder's MLPs and fusion.
  double params = 0, in = static_cast<double>(num_channels);
  for (size_t i = 0; i < hidden_sizes.size() && i < depths.size() && i < patch_sizes.size() && i < sr_ratios.size() &&
                     i < mlp_ratios.size();
       ++i) {
    const double h = static_cast<double>(hidden_sizes[i]), k = static_cast<double>(patch_sizes[i]);
    const double sr = static_cast<double>(sr_ratios[i]), r = static_cast<double>(mlp_ratios[i]);
    params += k * k * in * h + static_cast<double>(depths[i]) * ((4.0 + sr * sr) * h * h + (2.0 * r + 9.0) * h * h);
    params += h * static_cast<double>(decoder_hidden_size);
    in = h;
  }
  const double d = static_cast<double>(decoder_hidden_size);
  params += static_cast<double>(hidden_sizes.size()) * d * d + d * static_cast<double>(id2label.size());
  config::check_parameter_budget(params, what);
  std::set<std::string> unique(id2label.begin(), id2label.end());
  if (unique.size() != id2label.size()) fail("{}: field \"id2label\": labels must be distinct", what);
}

SegformerConfig SegformerConfig::from_json(const io::Json& json, const std::string& what) {
  // nvidia/mit-b* (the encoder-only ImageNet checkpoints) say SegformerForImageClassification.
  config::check_model_type(json, "segformer", "SegFormer",
                           {"SegformerForSemanticSegmentation", "SegformerForImageClassification", "SegformerModel"},
                           what);

  SegformerConfig c;
  c.num_channels = config::int_field(json, "num_channels", c.num_channels, 1, what);
  c.num_encoder_blocks = config::int_field(json, "num_encoder_blocks", c.num_encoder_blocks, 1, what);
  c.depths = config::positive_ints_field(json, "depths", c.depths, what);
  c.sr_ratios = config::positive_ints_field(json, "sr_ratios", c.sr_ratios, what);
  c.hidden_sizes = config::positive_ints_field(json, "hidden_sizes", c.hidden_sizes, what);
  c.patch_sizes = config::positive_ints_field(json, "patch_sizes", c.patch_sizes, what);
  c.strides = config::positive_ints_field(json, "strides", c.strides, what);
  c.num_attention_heads = config::positive_ints_field(json, "num_attention_heads", c.num_attention_heads, what);
  c.mlp_ratios = config::positive_ints_field(json, "mlp_ratios", c.mlp_ratios, what);
  c.hidden_act = config::string_field(json, "hidden_act", c.hidden_act, what);
  c.hidden_dropout_prob = config::number_field(json, "hidden_dropout_prob", c.hidden_dropout_prob, what);
  c.attention_probs_dropout_prob =
      config::number_field(json, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, what);
  c.classifier_dropout_prob = config::number_field(json, "classifier_dropout_prob", c.classifier_dropout_prob, what);
  c.initializer_range = config::number_field(json, "initializer_range", c.initializer_range, what);
  c.drop_path_rate = config::number_field(json, "drop_path_rate", c.drop_path_rate, what);
  c.layer_norm_eps = config::number_field(json, "layer_norm_eps", c.layer_norm_eps, what);
  c.decoder_hidden_size = config::int_field(json, "decoder_hidden_size", c.decoder_hidden_size, 1, what);
  c.semantic_loss_ignore_index =
      config::any_int_field(json, "semantic_loss_ignore_index", c.semantic_loss_ignore_index, what);
  c.reshape_last_stage = config::bool_field(json, "reshape_last_stage", c.reshape_last_stage, what);

  c.id2label = config::read_labels(json, c.id2label, /*min_labels=*/1, what);
  c.validate(what);
  return c;
}

io::Json SegformerConfig::to_json() const {
  return io::Json{{"architectures", {"SegformerForSemanticSegmentation"}},
                  {"model_type", "segformer"},
                  {"num_channels", num_channels},
                  {"num_encoder_blocks", num_encoder_blocks},
                  {"depths", depths},
                  {"sr_ratios", sr_ratios},
                  {"hidden_sizes", hidden_sizes},
                  {"patch_sizes", patch_sizes},
                  {"strides", strides},
                  {"num_attention_heads", num_attention_heads},
                  {"mlp_ratios", mlp_ratios},
                  {"hidden_act", hidden_act},
                  {"hidden_dropout_prob", hidden_dropout_prob},
                  {"attention_probs_dropout_prob", attention_probs_dropout_prob},
                  {"classifier_dropout_prob", classifier_dropout_prob},
                  {"initializer_range", initializer_range},
                  {"drop_path_rate", drop_path_rate},
                  {"layer_norm_eps", layer_norm_eps},
                  {"decoder_hidden_size", decoder_hidden_size},
                  {"semantic_loss_ignore_index", semantic_loss_ignore_index},
                  {"reshape_last_stage", reshape_last_stage},
                  {"id2label", config::id2label_json(id2label)},
                  {"label2id", config::label2id_json(id2label)},
                  {"torch_dtype", "float32"}};
}

std::vector<std::string> SegformerConfig::builtin_names() {
  return {"mit-b0", "mit-b1", "mit-b2", "mit-b3", "mit-b4", "mit-b5"};
}

SegformerConfig SegformerConfig::builtin(const std::string& name) {
  // The values HF's convert_segformer_original_to_pytorch.py gives each size (= huggingface.co/nvidia/mit-b* and
  // nvidia/segformer-b*-finetuned-ade-512-512): b0 is SegformerConfig's default; b1..b5 widen to [64, 128, 320, 512]
  // and b2..b5 also deepen and use a 768-wide decoder. Heads [1, 2, 5, 8], sr [8, 4, 2, 1], patches [7, 3, 3, 3],
  // strides [4, 2, 2, 2] and MLP ratio 4 are common to all.
  SegformerConfig c;
  if (name == "mit-b0") return c;
  if (name == "mit-b1") {
    c.hidden_sizes = {64, 128, 320, 512};
  } else if (name == "mit-b2" || name == "mit-b3" || name == "mit-b4" || name == "mit-b5") {
    c.hidden_sizes = {64, 128, 320, 512};
    c.decoder_hidden_size = 768;
    c.depths = name == "mit-b2"   ? std::vector<int64_t>{3, 4, 6, 3}
               : name == "mit-b3" ? std::vector<int64_t>{3, 4, 18, 3}
               : name == "mit-b4" ? std::vector<int64_t>{3, 8, 27, 3}
                                  : std::vector<int64_t>{3, 6, 40, 3};
  } else {
    usage_fail("unknown SegFormer model \"{}\" (built-in: {})", name, fmt::join(builtin_names(), ", "));
  }
  return c;
}

}  // namespace em::models
