#include "em/models/detr.hpp"

#include "em/core/error.hpp"
#include "em/models/layers.hpp"

#include <cmath>
#include <limits>

#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::models {
namespace {

constexpr double kPi = 3.14159265358979323846;

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  return training && p > 0 ? torch::dropout(x, p, true) : x;
}

// One LayerDrop draw (HF: torch.rand([]) < layerdrop skips the layer while training).
bool drop_layer(double layerdrop, bool training) {
  return training && layerdrop > 0 && torch::rand({}).item<double>() < layerdrop;
}

// The dtype's most negative finite value (torch.finfo(dtype).min), which HF adds on masked attention scores.
double lowest_value(torch::ScalarType type) {
  switch (type) {
    case torch::kBFloat16: return static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf: return static_cast<float>(std::numeric_limits<c10::Half>::lowest());
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

std::shared_ptr<torch::nn::Module> plain_module(const std::string& type) {
  return std::make_shared<torch::nn::Module>(type);
}

}  // namespace

// ---------------------------------------------------------------- backbone

FrozenBatchNorm2dImpl::FrozenBatchNorm2dImpl(int64_t num_features) {
  weight = register_buffer("weight", torch::ones({num_features}));
  bias = register_buffer("bias", torch::zeros({num_features}));
  running_mean = register_buffer("running_mean", torch::zeros({num_features}));
  running_var = register_buffer("running_var", torch::ones({num_features}));
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  // The original's formula (eps 1e-5 inside the rsqrt), folded into one scale and shift per channel; in the input's
  // dtype, so that bf16 activations stay bf16 under autocast.
  torch::Tensor scale = weight * (running_var + 1e-5).rsqrt();
  torch::Tensor shift = bias - running_mean * scale;
  scale = scale.to(x.scalar_type()).view({1, -1, 1, 1});
  shift = shift.to(x.scalar_type()).view({1, -1, 1, 1});
  return (x * scale).add_(shift);
}

DetrResNetBlockImpl::DetrResNetBlockImpl(bool bottleneck, int64_t in_channels, int64_t planes, int64_t stride,
                                         int64_t first_dilation, int64_t dilation) {
  using torch::nn::Conv2dOptions;
  auto add = [&](int64_t in, int64_t out, int64_t kernel, int64_t s, int64_t d) {
    const size_t k = convs.size() + 1;
    auto conv = register_module(fmt::format("conv{}", k), torch::nn::Conv2d(Conv2dOptions(in, out, kernel)
                                                                                 .stride(s)
                                                                                 .padding(kernel == 3 ? d : 0)
                                                                                 .dilation(d)
                                                                                 .bias(false)));
    auto bn = register_module(fmt::format("bn{}", k), FrozenBatchNorm2d(out));
    convs.emplace_back(conv, bn);
  };
  int64_t out_channels = planes;
  if (bottleneck) {
    // timm's Bottleneck: the stride (and the block's first dilation) sits in the 3x3 conv.
    out_channels = planes * 4;
    add(in_channels, planes, 1, 1, 1);
    add(planes, planes, 3, stride, first_dilation);
    add(planes, out_channels, 1, 1, 1);
  } else {
    add(in_channels, planes, 3, stride, first_dilation);
    add(planes, planes, 3, 1, dilation);
  }
  if (stride != 1 || in_channels != out_channels) {
    auto down = register_module("downsample", plain_module("Sequential"));
    downsample_conv = down->register_module(
        "0", torch::nn::Conv2d(Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)));
    downsample_bn = down->register_module("1", FrozenBatchNorm2d(out_channels));
  }
}

torch::Tensor DetrResNetBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (size_t k = 0; k < convs.size(); ++k) {
    h = convs[k].second->forward(convs[k].first->forward(h));
    if (k + 1 < convs.size()) h.relu_();
  }
  // h is a fresh tensor (the last frozen BN's output): add the shortcut into it.
  h.add_(downsample_conv ? downsample_bn->forward(downsample_conv->forward(x)) : x);
  return h.relu_();
}

DetrResNetBackboneImpl::DetrResNetBackboneImpl(const DetrConfig& config) {
  const bool bottleneck = detr::resnet_bottleneck(config.backbone);
  const std::vector<int64_t> depths = detr::resnet_depths(config.backbone);
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, 64, 7)
                                                         .stride(2)
                                                         .padding(3)
                                                         .bias(false)));
  bn1 = register_module("bn1", FrozenBatchNorm2d(64));
  // timm's make_blocks: with output_stride 16 (dilation) the last stage trades its stride for dilation 2; its first
  // block keeps the previous dilation in its first 3x3 conv.
  int64_t in = 64;
  int64_t dilation = 1, previous_dilation = 1;
  for (size_t s = 0; s < depths.size(); ++s) {
    const int64_t planes = 64 << s;
    int64_t stride = s == 0 ? 1 : 2;
    if (config.dilation && s == depths.size() - 1) {
      dilation *= stride;
      stride = 1;
    }
    torch::nn::ModuleList list;
    std::vector<DetrResNetBlock> blocks;
    for (int64_t j = 0; j < depths[s]; ++j) {
      blocks.push_back(DetrResNetBlock(bottleneck, in, planes, j == 0 ? stride : 1, previous_dilation, dilation));
      previous_dilation = dilation;
      in = bottleneck ? planes * 4 : planes;
      list->push_back(blocks.back());
    }
    register_module(fmt::format("layer{}", s + 1), list);
    stages.push_back(std::move(blocks));
  }
}

torch::Tensor DetrResNetBackboneImpl::forward(const torch::Tensor& pixel_values) {
  torch::Tensor h = bn1->forward(conv1->forward(pixel_values)).relu_();
  h = torch::max_pool2d(h, 3, 2, 1);
  for (auto& stage : stages)
    for (auto& block : stage) h = block->forward(h);
  return h;
}

// ---------------------------------------------------------------- transformer

DetrAttentionImpl::DetrAttentionImpl(int64_t embed_dim, int64_t heads, double dropout_p)
    : num_heads(heads), dropout(dropout_p) {
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
}

torch::Tensor DetrAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& query_pos,
                                         const torch::Tensor& key_value, const torch::Tensor& key_pos,
                                         const torch::Tensor& key_padding) {
  const int64_t n = hidden.size(0), t = hidden.size(1), d = hidden.size(2);
  const int64_t head_dim = d / num_heads;
  const torch::Tensor q_in = query_pos.defined() ? hidden + query_pos : hidden;
  torch::Tensor k_in, v_in;
  if (key_value.defined()) {
    k_in = key_pos.defined() ? key_value + key_pos : key_value;
    v_in = key_value;
  } else {
    k_in = q_in;
    v_in = hidden;
  }
  const int64_t s = v_in.size(1);
  // [N, L, D] -> [N, heads, L, head_dim]
  auto heads = [&](const torch::Tensor& x, int64_t len) {
    return x.view({n, len, num_heads, head_dim}).transpose(1, 2);
  };
  torch::Tensor q = heads(q_proj->forward(q_in) * std::pow(static_cast<double>(head_dim), -0.5), t);
  torch::Tensor k = heads(k_proj->forward(k_in), s);
  torch::Tensor v = heads(v_proj->forward(v_in), s);
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));  // [N, heads, T, S]
  if (key_padding.defined()) {
    // HF adds the dtype's lowest value on padded keys (the original -inf): the same softmax, and no NaN even for a
    // row without any valid key.
    const double lowest = lowest_value(scores.scalar_type());
    scores.masked_fill_(key_padding.view({n, 1, 1, s}), lowest);
  }
  torch::Tensor probs = maybe_dropout(torch::softmax(scores, -1), dropout, is_training());
  torch::Tensor out = torch::matmul(probs.to(v.scalar_type()), v).transpose(1, 2).reshape({n, t, d});
  return out_proj->forward(out);
}

DetrEncoderLayerImpl::DetrEncoderLayerImpl(const DetrConfig& config)
    : activation(parse_activation(config.activation_function, "detr config", "activation_function")),
      dropout(config.dropout),
      activation_dropout(config.activation_dropout) {
  const int64_t d = config.d_model;
  self_attn = register_module("self_attn", DetrAttention(d, config.encoder_attention_heads, config.attention_dropout));
  self_attn_layer_norm =
      register_module("self_attn_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  fc1 = register_module("fc1", torch::nn::Linear(d, config.encoder_ffn_dim));
  fc2 = register_module("fc2", torch::nn::Linear(config.encoder_ffn_dim, d));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
}

torch::Tensor DetrEncoderLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& pos,
                                            const torch::Tensor& key_padding) {
  const bool training = is_training();
  torch::Tensor h = self_attn->forward(hidden, pos, {}, {}, key_padding);
  h = layer_norm_in_weight_dtype(self_attn_layer_norm, hidden + maybe_dropout(h, dropout, training));
  torch::Tensor f = maybe_dropout(activate(fc1->forward(h), activation), activation_dropout, training);
  f = maybe_dropout(fc2->forward(f), dropout, training);
  return layer_norm_in_weight_dtype(final_layer_norm, h + f);
}

DetrDecoderLayerImpl::DetrDecoderLayerImpl(const DetrConfig& config)
    : activation(parse_activation(config.activation_function, "detr config", "activation_function")),
      dropout(config.dropout),
      activation_dropout(config.activation_dropout) {
  const int64_t d = config.d_model;
  using torch::nn::LayerNormOptions;
  self_attn = register_module("self_attn", DetrAttention(d, config.decoder_attention_heads, config.attention_dropout));
  self_attn_layer_norm = register_module("self_attn_layer_norm", torch::nn::LayerNorm(LayerNormOptions({d})));
  encoder_attn =
      register_module("encoder_attn", DetrAttention(d, config.decoder_attention_heads, config.attention_dropout));
  encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", torch::nn::LayerNorm(LayerNormOptions({d})));
  fc1 = register_module("fc1", torch::nn::Linear(d, config.decoder_ffn_dim));
  fc2 = register_module("fc2", torch::nn::Linear(config.decoder_ffn_dim, d));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(LayerNormOptions({d})));
}

torch::Tensor DetrDecoderLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& query_pos,
                                            const torch::Tensor& memory, const torch::Tensor& memory_pos,
                                            const torch::Tensor& memory_padding) {
  const bool training = is_training();
  torch::Tensor a = self_attn->forward(hidden, query_pos, {}, {}, {});
  torch::Tensor h = layer_norm_in_weight_dtype(self_attn_layer_norm, hidden + maybe_dropout(a, dropout, training));
  a = encoder_attn->forward(h, query_pos, memory, memory_pos, memory_padding);
  h = layer_norm_in_weight_dtype(encoder_attn_layer_norm, h + maybe_dropout(a, dropout, training));
  torch::Tensor f = maybe_dropout(activate(fc1->forward(h), activation), activation_dropout, training);
  f = maybe_dropout(fc2->forward(f), dropout, training);
  return layer_norm_in_weight_dtype(final_layer_norm, h + f);
}

// ---------------------------------------------------------------- DetrModel

namespace {
// parent.layers.{0..count-1}: `count` layers built from the config, also kept in `layers` for the forward pass.
template <typename Layer>
void register_layers(torch::nn::Module& parent, const DetrConfig& config, int64_t count, std::vector<Layer>& layers) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < count; ++i) {
    layers.push_back(Layer(config));
    list->push_back(layers.back());
  }
  parent.register_module("layers", list);
}
}  // namespace

DetrModelImpl::DetrModelImpl(const DetrConfig& config) : config_(config) {
  config_.validate("detr config");
  const int64_t d = config.d_model;
  // HF nests the backbone as backbone (DetrConvModel) . conv_encoder (DetrConvEncoder) . model (the timm ResNet).
  auto backbone = register_module("backbone", plain_module("DetrConvModel"));
  auto conv = backbone->register_module("conv_encoder", plain_module("DetrConvEncoder"));
  conv_encoder = conv->register_module("model", DetrResNetBackbone(config));
  if (config.position_embedding_type == "learned") {
    auto pe = backbone->register_module("position_embedding", plain_module("DetrLearnedPositionEmbedding"));
    row_embeddings = pe->register_module("row_embeddings", torch::nn::Embedding(50, d / 2));
    column_embeddings = pe->register_module("column_embeddings", torch::nn::Embedding(50, d / 2));
  }
  input_projection = register_module("input_projection",
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(config.backbone_channels(), d, 1)));
  query_position_embeddings = register_module("query_position_embeddings", torch::nn::Embedding(config.num_queries, d));

  auto encoder = register_module("encoder", plain_module("DetrEncoder"));
  register_layers(*encoder, config, config.encoder_layers, encoder_layers);
  auto decoder = register_module("decoder", plain_module("DetrDecoder"));
  register_layers(*decoder, config, config.decoder_layers, decoder_layers);
  decoder_layernorm = decoder->register_module("layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
}

torch::Tensor DetrModelImpl::feature_mask(const torch::Tensor& pixel_mask, int64_t height, int64_t width) {
  namespace F = torch::nn::functional;
  torch::Tensor m =
      F::interpolate(pixel_mask.unsqueeze(0).to(torch::kFloat),
                     F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(torch::kNearest));
  return m.to(torch::kBool)[0];
}

torch::Tensor DetrModelImpl::position_embedding(const torch::Tensor& mask) const {
  const int64_t n = mask.size(0), h = mask.size(1), w = mask.size(2);
  const int64_t steps = config_.d_model / 2;
  if (config_.position_embedding_type == "learned") {
    if (h > 50 || w > 50)
      fail("detr: the learned position embedding covers feature maps up to 50 x 50, got {} x {}", h, w);
    torch::Tensor x_emb = column_embeddings->weight.slice(0, 0, w);  // [w, d/2]
    torch::Tensor y_emb = row_embeddings->weight.slice(0, 0, h);     // [h, d/2]
    torch::Tensor pos = torch::cat({x_emb.unsqueeze(0).expand({h, w, steps}), y_emb.unsqueeze(1).expand({h, w, steps})},
                                   -1);  // [h, w, d]
    return pos.reshape({1, h * w, 2 * steps}).expand({n, h * w, 2 * steps}).to(torch::kFloat);
  }
  // The original PositionEmbeddingSine(d/2, temperature 10000, normalize=True, scale 2*pi): cumulative counts of
  // valid positions, normalised by the last (eps 1e-6), so that every image spans [0, 2*pi] over its valid area.
  torch::Tensor valid = mask.to(torch::kFloat);
  torch::Tensor y_embed = valid.cumsum(1);
  torch::Tensor x_embed = valid.cumsum(2);
  y_embed = y_embed / (y_embed.slice(1, h - 1, h) + 1e-6) * (2 * kPi);
  x_embed = x_embed / (x_embed.slice(2, w - 1, w) + 1e-6) * (2 * kPi);
  torch::Tensor dim_t = torch::arange(steps, torch::TensorOptions().dtype(torch::kFloat).device(mask.device()));
  dim_t = torch::pow(10000.0, 2 * torch::floor(dim_t / 2) / static_cast<double>(steps));
  auto encode = [&](const torch::Tensor& e) {
    torch::Tensor p = e.unsqueeze(-1) / dim_t;  // [N, h, w, steps]
    return torch::stack({p.slice(3, 0, steps, 2).sin(), p.slice(3, 1, steps, 2).cos()}, 4).flatten(3);
  };
  return torch::cat({encode(y_embed), encode(x_embed)}, 3).reshape({n, h * w, 2 * steps});
}

DetrDecoderOutput DetrModelImpl::forward(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask_in) {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != config_.num_channels)
    fail("detr: pixel_values must be [N, {}, H, W], got [{}]", config_.num_channels,
         fmt::join(pixel_values.sizes(), ", "));
  const int64_t n = pixel_values.size(0);
  torch::Tensor pixel_mask = pixel_mask_in;
  if (!pixel_mask.defined()) {
    pixel_mask = torch::ones({n, pixel_values.size(2), pixel_values.size(3)},
                             torch::TensorOptions().dtype(torch::kLong).device(pixel_values.device()));
  } else if (pixel_mask.dim() != 3 || pixel_mask.size(0) != n || pixel_mask.size(1) != pixel_values.size(2) ||
             pixel_mask.size(2) != pixel_values.size(3)) {
    fail("detr: pixel_mask must be [N, H, W] = [{}, {}, {}] like pixel_values, got [{}]", n, pixel_values.size(2),
         pixel_values.size(3), fmt::join(pixel_mask.sizes(), ", "));
  }

  torch::Tensor features = conv_encoder->forward(pixel_values);  // [N, C, h, w]
  const int64_t h = features.size(2), w = features.size(3);
  torch::Tensor mask = feature_mask(pixel_mask, h, w);  // [N, h, w], true = valid
  torch::Tensor pos = position_embedding(mask).to(features.scalar_type());  // [N, hw, d]
  torch::Tensor projected = input_projection->forward(features);             // [N, d, h, w]
  // NCHW or channels-last alike: tokens in row-major (y, x) order, as HF's flatten(2).permute(0, 2, 1).
  torch::Tensor tokens = projected.permute({0, 2, 3, 1}).reshape({n, h * w, config_.d_model});
  torch::Tensor padding = mask.logical_not().reshape({n, h * w});

  // Encoder (HF applies dropout to its input while training).
  torch::Tensor memory = maybe_dropout(tokens, config_.dropout, is_training());
  for (auto& layer : encoder_layers)
    if (!drop_layer(config_.encoder_layerdrop, is_training())) memory = layer->forward(memory, pos, padding);

  // Decoder: zero queries carrying the learned query embeddings as their position.
  torch::Tensor query_pos = query_position_embeddings->weight.unsqueeze(0).expand({n, -1, -1});
  torch::Tensor hidden = torch::zeros_like(query_pos);
  std::vector<torch::Tensor> intermediate;
  for (auto& layer : decoder_layers) {
    if (drop_layer(config_.decoder_layerdrop, is_training())) continue;
    hidden = layer->forward(hidden, query_pos, memory, pos, padding);
    if (config_.auxiliary_loss) {
      // HF's DetrDecoder: with auxiliary_loss the normalised state is both the layer's auxiliary output and the next
      // layer's input (the original DETR normalises only a copy). Kept so that HF computes what we compute.
      hidden = layer_norm_in_weight_dtype(decoder_layernorm, hidden);
      intermediate.push_back(hidden);
    }
  }
  DetrDecoderOutput out;
  out.last_hidden_state = layer_norm_in_weight_dtype(decoder_layernorm, hidden);
  if (!intermediate.empty()) out.intermediate_hidden_states = torch::stack(intermediate);
  return out;
}

// ---------------------------------------------------------------- heads

DetrMLPPredictionHeadImpl::DetrMLPPredictionHeadImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim,
                                                     int64_t num_layers) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < num_layers; ++i) {
    layers.push_back(torch::nn::Linear(i == 0 ? input_dim : hidden_dim, i + 1 == num_layers ? output_dim : hidden_dim));
    list->push_back(layers.back());
  }
  register_module("layers", list);
}

torch::Tensor DetrMLPPredictionHeadImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < layers.size(); ++i) {
    x = layers[i]->forward(x);
    if (i + 1 < layers.size()) x = torch::relu(x);
  }
  return x;
}

DetrForObjectDetectionImpl::DetrForObjectDetectionImpl(DetrConfig config) : config_(std::move(config)) {
  config_.validate("detr config");
  model = register_module("model", DetrModel(config_));
  class_labels_classifier =
      register_module("class_labels_classifier", torch::nn::Linear(config_.d_model, config_.num_labels() + 1));
  bbox_predictor = register_module("bbox_predictor", DetrMLPPredictionHead(config_.d_model, config_.d_model, 4, 3));
  init_detr_weights(*this);
  // As the original's BackboneBase and HF's DetrConvEncoder: only layer2..layer4 of the backbone train.
  for (auto& p : model->conv_encoder->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("layer2") == std::string::npos && name.find("layer3") == std::string::npos &&
        name.find("layer4") == std::string::npos)
      p.value().set_requires_grad(false);
  }
}

DetrOutput DetrForObjectDetectionImpl::forward(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask) {
  DetrDecoderOutput decoded = model->forward(pixel_values, pixel_mask);
  DetrOutput out;
  out.logits = class_labels_classifier->forward(decoded.last_hidden_state);
  out.pred_boxes = bbox_predictor->forward(decoded.last_hidden_state).sigmoid();
  if (decoded.intermediate_hidden_states.defined()) {
    const torch::Tensor& inter = decoded.intermediate_hidden_states;  // [L, N, Q, d]
    torch::Tensor logits = class_labels_classifier->forward(inter);
    torch::Tensor boxes = bbox_predictor->forward(inter).sigmoid();
    for (int64_t i = 0; i + 1 < inter.size(0); ++i) out.auxiliary_outputs.push_back({logits[i], boxes[i]});
  }
  return out;
}

std::vector<std::string> DetrForObjectDetectionImpl::backbone_parameter_names() const {
  std::vector<std::string> names;
  for (const auto& p : named_parameters())
    if (p.key().rfind("model.backbone.", 0) == 0 && p.value().requires_grad()) names.push_back(p.key());
  return names;
}

void init_detr_weights(DetrForObjectDetectionImpl& model) {
  if (skip_init()) return;  // a checkpoint fills every tensor next
  torch::NoGradGuard no_grad;
  for (auto& m : model.model->conv_encoder->modules(/*include_self=*/false))
    if (auto* conv = m->as<torch::nn::Conv2d>())
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  // nn.MultiheadAttention keeps q, k, v in one [3D, D] in_proj_weight, initialised xavier-uniform as a whole, with
  // zero in_proj_bias and out_proj.bias; Transformer._reset_parameters then makes every other matrix xavier-uniform.
  auto init_attention = [](DetrAttentionImpl& a) {
    const double d = static_cast<double>(a.q_proj->weight.size(1));
    const double bound = std::sqrt(6.0 / (d + 3 * d));
    for (auto* lin : {&a.q_proj, &a.k_proj, &a.v_proj}) {
      (*lin)->weight.uniform_(-bound, bound);
      (*lin)->bias.zero_();
    }
    torch::nn::init::xavier_uniform_(a.out_proj->weight);
    a.out_proj->bias.zero_();
  };
  for (auto& layer : model.model->encoder_layers) {
    init_attention(*layer->self_attn);
    torch::nn::init::xavier_uniform_(layer->fc1->weight);
    torch::nn::init::xavier_uniform_(layer->fc2->weight);
  }
  for (auto& layer : model.model->decoder_layers) {
    init_attention(*layer->self_attn);
    init_attention(*layer->encoder_attn);
    torch::nn::init::xavier_uniform_(layer->fc1->weight);
    torch::nn::init::xavier_uniform_(layer->fc2->weight);
  }
  // Frozen BatchNorms are built as the identity; heads, input_projection, query embeddings (N(0, 1)) and LayerNorms
  // keep LibTorch's defaults, which are PyTorch's.
}

}  // namespace em::models
