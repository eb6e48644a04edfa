#include "em/models/detr_config.hpp"

#include "em/core/error.hpp"
#include "em/models/config_fields.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/ranges.h>

namespace em::models {

// ---------------------------------------------------------------- config.json fields

namespace detr {

const std::vector<std::string>& backbone_names() {
  static const std::vector<std::string> names{"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"};
  return names;
}

std::vector<int64_t> resnet_depths(const std::string& name) {
  if (name == "resnet18") return {2, 2, 2, 2};
  if (name == "resnet34" || name == "resnet50") return {3, 4, 6, 3};
  if (name == "resnet101") return {3, 4, 23, 3};
  if (name == "resnet152") return {3, 8, 36, 3};
  fail("detr: unknown backbone \"{}\" (expected {})", name, fmt::join(backbone_names(), ", "));
}
bool resnet_bottleneck(const std::string& name) { return name != "resnet18" && name != "resnet34"; }

}  // namespace detr

// ---------------------------------------------------------------- config

int64_t DetrConfig::backbone_channels() const { return detr::resnet_bottleneck(backbone) ? 2048 : 512; }

void DetrConfig::set_labels(std::vector<std::string> labels) {
  std::set<std::string> unique(labels.begin(), labels.end());
  if (unique.size() != labels.size()) fail("detr config: labels must be distinct, got [{}]", fmt::join(labels, ", "));
  id2label = std::move(labels);
}

void DetrConfig::validate(const std::string& what) const {
  if (!use_timm_backbone)
    fail("{}: field \"use_timm_backbone\": only true is supported (timm-named ResNet backbones, as in "
         "facebook/detr-resnet-50)",
         what);
  const std::vector<std::string>& backbones = detr::backbone_names();
  if (std::find(backbones.begin(), backbones.end(), backbone) == backbones.end())
    fail("{}: field \"backbone\": unsupported backbone \"{}\" (expected {})", what, backbone,
         fmt::join(backbones, ", "));
  auto positive = [&](const char* key, int64_t v) {
    if (v < 1) fail("{}: field \"{}\": expected an integer >= 1, got {}", what, key, v);
  };
  positive("num_channels", num_channels);
  positive("num_queries", num_queries);
  positive("d_model", d_model);
  positive("decoder_layers", decoder_layers);
  positive("encoder_attention_heads", encoder_attention_heads);
  positive("decoder_attention_heads", decoder_attention_heads);
  positive("encoder_ffn_dim", encoder_ffn_dim);
  positive("decoder_ffn_dim", decoder_ffn_dim);
  if (encoder_layers < 0) fail("{}: field \"encoder_layers\": expected an integer >= 0, got {}", what, encoder_layers);
  for (auto [key, heads] : {std::pair<const char*, int64_t>{"encoder_attention_heads", encoder_attention_heads},
                            {"decoder_attention_heads", decoder_attention_heads}})
    if (d_model % heads != 0)
      fail("{}: field \"{}\": d_model {} is not divisible by {} heads", what, key, d_model, heads);
  if (position_embedding_type == "sine") {
    if (d_model % 4 != 0)
      fail("{}: field \"d_model\": the sine position embedding needs a multiple of 4, got {}", what, d_model);
  } else if (position_embedding_type == "learned") {
    if (d_model % 2 != 0) fail("{}: field \"d_model\": the learned position embedding needs an even value, got {}",
                               what, d_model);
  } else {
    fail("{}: field \"position_embedding_type\": expected \"sine\" or \"learned\", got \"{}\"", what,
         position_embedding_type);
  }
  parse_activation(activation_function, what, "activation_function");
  for (auto [key, p] : {std::pair<const char*, double>{"dropout", dropout},
                        {"attention_dropout", attention_dropout},
                        {"activation_dropout", activation_dropout}})
    if (!(p >= 0 && p < 1)) fail("{}: field \"{}\": expected a probability in [0, 1), got {}", what, key, p);
  for (auto [key, p] : {std::pair<const char*, double>{"encoder_layerdrop", encoder_layerdrop},
                        {"decoder_layerdrop", decoder_layerdrop}})
    if (!(p >= 0 && p <= 1)) fail("{}: field \"{}\": expected a probability in [0, 1], got {}", what, key, p);
  for (auto [key, v] : {std::pair<const char*, double>{"class_cost", class_cost},
                        {"bbox_cost", bbox_cost},
                        {"giou_cost", giou_cost},
                        {"bbox_loss_coefficient", bbox_loss_coefficient},
                        {"giou_loss_coefficient", giou_loss_coefficient},
                        {"eos_coefficient", eos_coefficient},
                        {"mask_loss_coefficient", mask_loss_coefficient},
                        {"dice_loss_coefficient", dice_loss_coefficient},
                        {"init_std", init_std},
                        {"init_xavier_std", init_xavier_std}})
    if (!(v >= 0) || !std::isfinite(v)) fail("{}: field \"{}\": expected a finite number >= 0, got {}", what, key, v);
  if (class_cost == 0 && bbox_cost == 0 && giou_cost == 0)
    fail("{}: fields \"class_cost\", \"bbox_cost\", \"giou_cost\" are all 0 (the matcher needs one)", what);
  if (!(threshold >= 0 && threshold <= 1))
    fail("{}: field \"threshold\": expected a score in [0, 1], got {}", what, threshold);
  if (id2label.empty()) fail("{}: field \"id2label\": a detector needs at least one label", what);
  // An upper bound of the weights: the ResNet backbone (ResNet-101's 45e6), encoder layers (4 d^2 attention + 2 d
  // ffn), decoder layers (8 d^2 + 2 d ffn), the queries, the input projection (2048 d) and the heads.
  const double d = static_cast<double>(d_model);
  const double params = 45e6 + static_cast<double>(encoder_layers) * (4 * d * d + 2 * d * encoder_ffn_dim) +
                        static_cast<double>(decoder_layers) * (8 * d * d + 2 * d * decoder_ffn_dim) +
                        static_cast<double>(num_queries) * d + 2048 * d + 2 * d * d +
                        d * static_cast<double>(id2label.size() + 1);
  config::check_parameter_budget(params, what);
  // Names may repeat in a loaded config: facebook/detr-resnet-50 names its 91 COCO ids' gaps "N/A". Training sets
  // distinct names (set_labels).
}

DetrConfig DetrConfig::from_json(const io::Json& json, const std::string& what) {
  config::check_model_type(json, "detr", "DETR", {"DetrForObjectDetection", "DetrModel"}, what);

  DetrConfig c;
  c.use_timm_backbone = config::bool_field(json, "use_timm_backbone", c.use_timm_backbone, what);
  c.backbone = config::string_field(json, "backbone", c.backbone, what);
  config::bool_field(json, "use_pretrained_backbone", false, what);  // type-checked; never used (see to_json)
  if (auto it = json.find("backbone_config"); it != json.end() && !it->is_null())
    fail("{}: field \"backbone_config\": only null is supported (a timm backbone named by \"backbone\"), got {}", what,
         config::json_text(*it));
  c.dilation = config::bool_field(json, "dilation", c.dilation, what);
  c.num_channels = config::int_field(json, "num_channels", c.num_channels, 1, what);
  // HF fills backbone_kwargs for timm itself ({"out_indices": [1, 2, 3, 4], "in_chans": num_channels,
  // "output_stride": 16 with dilation}); only those meanings are supported.
  if (auto it = json.find("backbone_kwargs"); it != json.end() && !it->is_null()) {
    if (!it->is_object())
      fail("{}: field \"backbone_kwargs\": expected an object or null, got {}", what, config::json_text(*it));
    for (auto kw = it->begin(); kw != it->end(); ++kw) {
      const std::string& key = kw.key();
      const io::Json& v = kw.value();
      if (key == "in_chans" && v.is_number_integer() && v.get<int64_t>() >= 1) {
        c.num_channels = v.get<int64_t>();
      } else if (key == "out_indices" && v.is_array() && !v.empty() && v.back() == 4) {
      } else if (key == "output_stride" && v.is_number_integer() && (v == 16 || v == 32)) {
        c.dilation = v == 16;
      } else {
        fail("{}: field \"backbone_kwargs\".\"{}\": unsupported value {} (supported: in_chans, out_indices ending in "
             "4, output_stride 16 or 32)",
             what, key, config::json_text(v));
      }
    }
  }
  c.num_queries = config::int_field(json, "num_queries", c.num_queries, 1, what);
  c.d_model = config::int_field(json, "d_model", c.d_model, 1, what);
  c.encoder_layers = config::int_field(json, "encoder_layers", c.encoder_layers, 0, what);
  c.decoder_layers = config::int_field(json, "decoder_layers", c.decoder_layers, 1, what);
  c.encoder_attention_heads = config::int_field(json, "encoder_attention_heads", c.encoder_attention_heads, 1, what);
  c.decoder_attention_heads = config::int_field(json, "decoder_attention_heads", c.decoder_attention_heads, 1, what);
  c.encoder_ffn_dim = config::int_field(json, "encoder_ffn_dim", c.encoder_ffn_dim, 1, what);
  c.decoder_ffn_dim = config::int_field(json, "decoder_ffn_dim", c.decoder_ffn_dim, 1, what);
  c.activation_function = config::string_field(json, "activation_function", c.activation_function, what);
  c.position_embedding_type = config::string_field(json, "position_embedding_type", c.position_embedding_type, what);
  c.dropout = config::number_field(json, "dropout", c.dropout, what);
  c.attention_dropout = config::number_field(json, "attention_dropout", c.attention_dropout, what);
  c.activation_dropout = config::number_field(json, "activation_dropout", c.activation_dropout, what);
  c.encoder_layerdrop = config::number_field(json, "encoder_layerdrop", c.encoder_layerdrop, what);
  c.decoder_layerdrop = config::number_field(json, "decoder_layerdrop", c.decoder_layerdrop, what);
  c.init_std = config::number_field(json, "init_std", c.init_std, what);
  c.init_xavier_std = config::number_field(json, "init_xavier_std", c.init_xavier_std, what);
  c.auxiliary_loss = config::bool_field(json, "auxiliary_loss", c.auxiliary_loss, what);
  c.class_cost = config::number_field(json, "class_cost", c.class_cost, what);
  c.bbox_cost = config::number_field(json, "bbox_cost", c.bbox_cost, what);
  c.giou_cost = config::number_field(json, "giou_cost", c.giou_cost, what);
  c.bbox_loss_coefficient = config::number_field(json, "bbox_loss_coefficient", c.bbox_loss_coefficient, what);
  c.giou_loss_coefficient = config::number_field(json, "giou_loss_coefficient", c.giou_loss_coefficient, what);
  c.eos_coefficient = config::number_field(json, "eos_coefficient", c.eos_coefficient, what);
  c.mask_loss_coefficient = config::number_field(json, "mask_loss_coefficient", c.mask_loss_coefficient, what);
  c.dice_loss_coefficient = config::number_field(json, "dice_loss_coefficient", c.dice_loss_coefficient, what);
  c.threshold = config::number_field(json, "threshold", c.threshold, what);

  c.id2label = config::read_labels(json, c.id2label, /*min_labels=*/1, what);
  c.validate(what);
  return c;
}

io::Json DetrConfig::to_json() const {
  // use_pretrained_backbone is always false: the folder holds every weight, and true would make HF download timm's
  // ImageNet weights before overwriting them. backbone_kwargs is left to HF, which derives it from these fields.
  return io::Json{{"architectures", {"DetrForObjectDetection"}},
                  {"model_type", "detr"},
                  {"use_timm_backbone", use_timm_backbone},
                  {"backbone", backbone},
                  {"use_pretrained_backbone", false},
                  {"backbone_config", nullptr},
                  {"dilation", dilation},
                  {"num_channels", num_channels},
                  {"num_queries", num_queries},
                  {"d_model", d_model},
                  {"encoder_layers", encoder_layers},
                  {"decoder_layers", decoder_layers},
                  {"encoder_attention_heads", encoder_attention_heads},
                  {"decoder_attention_heads", decoder_attention_heads},
                  {"encoder_ffn_dim", encoder_ffn_dim},
                  {"decoder_ffn_dim", decoder_ffn_dim},
                  {"num_hidden_layers", encoder_layers},
                  {"activation_function", activation_function},
                  {"dropout", dropout},
                  {"attention_dropout", attention_dropout},
                  {"activation_dropout", activation_dropout},
                  {"init_std", init_std},
                  {"init_xavier_std", init_xavier_std},
                  {"encoder_layerdrop", encoder_layerdrop},
                  {"decoder_layerdrop", decoder_layerdrop},
                  {"auxiliary_loss", auxiliary_loss},
                  {"position_embedding_type", position_embedding_type},
                  {"is_encoder_decoder", true},
                  {"class_cost", class_cost},
                  {"bbox_cost", bbox_cost},
                  {"giou_cost", giou_cost},
                  {"mask_loss_coefficient", mask_loss_coefficient},
                  {"dice_loss_coefficient", dice_loss_coefficient},
                  {"bbox_loss_coefficient", bbox_loss_coefficient},
                  {"giou_loss_coefficient", giou_loss_coefficient},
                  {"eos_coefficient", eos_coefficient},
                  {"threshold", threshold},
                  {"id2label", config::id2label_json(id2label)},
                  {"label2id", config::label2id_json(id2label)},
                  {"torch_dtype", "float32"}};
}

std::vector<std::string> DetrConfig::builtin_names() {
  return {"detr-resnet-50",  "detr-resnet-101", "detr-resnet-50-dc5",  "detr-resnet-101-dc5",
          "detr-resnet-18",  "detr-resnet-34",  "detr-resnet-18-tiny"};
}

DetrConfig DetrConfig::builtin(const std::string& name) {
  // HF DetrConfig's defaults are facebook/detr-resnet-50's architecture (d_model 256, 6+6 layers, 8 heads, ffn 2048,
  // 100 queries, sine embedding, costs 1/5/2, weights 5/2, eos 0.1).
  DetrConfig c;
  c.auxiliary_loss = true;
  if (name == "detr-resnet-50") {
  } else if (name == "detr-resnet-101") {
    c.backbone = "resnet101";
  } else if (name == "detr-resnet-50-dc5") {
    c.dilation = true;
  } else if (name == "detr-resnet-101-dc5") {
    c.backbone = "resnet101";
    c.dilation = true;
  } else if (name == "detr-resnet-18") {
    c.backbone = "resnet18";
  } else if (name == "detr-resnet-34") {
    c.backbone = "resnet34";
  } else if (name == "detr-resnet-18-tiny") {
    c.backbone = "resnet18";
    c.d_model = 64;
    c.encoder_layers = c.decoder_layers = 2;
    c.encoder_attention_heads = c.decoder_attention_heads = 4;
    c.encoder_ffn_dim = c.decoder_ffn_dim = 256;
    c.num_queries = 20;
  } else {
    usage_fail("unknown DETR model \"{}\" (built-in: {})", name, fmt::join(builtin_names(), ", "));
  }
  return c;
}

}  // namespace em::models
