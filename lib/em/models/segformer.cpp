#include "em/models/segformer.hpp"

#include "em/core/error.hpp"
#include "em/dist/sync_batchnorm.hpp"
#include "em/models/layers.hpp"

#include <cmath>

#include <ATen/record_function.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::models {
namespace {

// HF's modeling builds every nn.LayerNorm without an eps argument, i.e. torch's default, whatever
// config.layer_norm_eps says (see ../shared/fixtures/README.md, "Reference facts").
constexpr double kLayerNormEps = 1e-5;

torch::nn::LayerNorm layer_norm(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(kLayerNormEps));
}

// HF's drop_path: per sample, keep with probability 1-p and scale by 1/(1-p); the identity outside training.
// Same tensor shape, dtype and RNG call as HF, so a seeded torch gives the same masks.
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training) {
  if (p == 0.0 || !training) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  torch::Tensor mask = keep + torch::rand(shape, x.options());
  mask.floor_();
  return x.div(keep) * mask;
}

torch::Tensor maybe_dropout(const torch::Tensor& x, double p, bool training) {
  return p > 0.0 && training ? torch::dropout(x, p, true) : x;
}

std::shared_ptr<torch::nn::Module> plain(const std::string& type) { return std::make_shared<torch::nn::Module>(type); }

// The profiler's name for a model part (scripts/bench/bench_models.cpp sums the time per part); free when no profiler
// runs.
#define EM_PROFILE_SCOPE(name) RECORD_USER_SCOPE(name)

// LayerNorm with its own profiler scope.
torch::Tensor norm(torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  EM_PROFILE_SCOPE("segformer.layer_norm");
  return layer_norm_in_weight_dtype(ln, x);
}

}  // namespace

// ---------------------------------------------------------------- modules

SegformerOverlapPatchEmbeddingsImpl::SegformerOverlapPatchEmbeddingsImpl(int64_t patch_size, int64_t stride,
                                                                         int64_t in_channels, int64_t hidden_size) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden_size, patch_size)
                                                       .stride(stride)
                                                       .padding(patch_size / 2)));
  layer_norm = register_module("layer_norm", models::layer_norm(hidden_size));
}

std::tuple<torch::Tensor, int64_t, int64_t> SegformerOverlapPatchEmbeddingsImpl::forward(const torch::Tensor& x) {
  torch::Tensor e;
  {
    EM_PROFILE_SCOPE("segformer.patch_embeddings");
    e = proj->forward(x);
  }
  const int64_t h = e.size(2), w = e.size(3);
  // [N, C, h, w] -> [N, h*w, C]: a view, and already contiguous when the conv ran channels-last.
  return {norm(layer_norm, e.flatten(2).transpose(1, 2)), h, w};
}

SegformerAttentionImpl::SegformerAttentionImpl(const SegformerConfig& config, int64_t hidden_size, int64_t heads,
                                               int64_t sr_ratio)
    : num_heads(heads),
      attention_dropout(config.attention_probs_dropout_prob),
      hidden_dropout(config.hidden_dropout_prob) {
  auto self = register_module("self", plain("SegformerEfficientSelfAttention"));
  query = self->register_module("query", torch::nn::Linear(hidden_size, hidden_size));
  key = self->register_module("key", torch::nn::Linear(hidden_size, hidden_size));
  value = self->register_module("value", torch::nn::Linear(hidden_size, hidden_size));
  if (sr_ratio > 1) {
    sr = self->register_module(
        "sr", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden_size, hidden_size, sr_ratio).stride(sr_ratio)));
    sr_norm = self->register_module("layer_norm", layer_norm(hidden_size));
  }
  auto output = register_module("output", plain("SegformerSelfOutput"));
  dense = output->register_module("dense", torch::nn::Linear(hidden_size, hidden_size));
}

torch::Tensor SegformerAttentionImpl::forward(const torch::Tensor& x, int64_t height, int64_t width) {
  const int64_t n = x.size(0), len = x.size(1), c = x.size(2);
  const int64_t d = c / num_heads;
  torch::Tensor kv = x;
  if (sr) {
    // [N, h*w, C] seen as a channels-last [N, C, h, w] map (no copy), reduced by the strided conv, back to tokens.
    torch::Tensor map = x.permute({0, 2, 1}).reshape({n, c, height, width});
    {
      EM_PROFILE_SCOPE("segformer.attention.sequence_reduction");
      map = sr->forward(map);
    }
    kv = norm(sr_norm, map.reshape({n, c, -1}).permute({0, 2, 1}));
  }
  EM_PROFILE_SCOPE("segformer.attention");
  // [N, L, C] -> [N * heads, L, d]: a view for one head (the first stage), a copy otherwise.
  auto heads = [&](const torch::Tensor& t) {
    return t.view({n, -1, num_heads, d}).transpose(1, 2).reshape({n * num_heads, -1, d});
  };
  // HF divides the scores by sqrt(d); scaling the query's weight and bias instead costs C * C, not N * L * S.
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor q = heads(torch::linear(x, query->weight * scale, query->bias * scale));
  torch::Tensor k = heads(key->forward(kv));
  torch::Tensor v = heads(value->forward(kv));
  torch::Tensor probs = maybe_dropout(torch::softmax(torch::bmm(q, k.transpose(1, 2)), -1), attention_dropout,
                                      is_training());
  torch::Tensor context = torch::bmm(probs, v);  // [N * heads, L, d]
  if (num_heads > 1) context = context.view({n, num_heads, len, d}).transpose(1, 2);
  context = context.reshape({n, len, c});
  return maybe_dropout(dense->forward(context), hidden_dropout, is_training());
}

SegformerMixFFNImpl::SegformerMixFFNImpl(const SegformerConfig& config, int64_t hidden_size, int64_t mlp_hidden_size)
    : activation(parse_activation(config.hidden_act, "segformer config")),
      hidden_dropout(config.hidden_dropout_prob) {
  dense1 = register_module("dense1", torch::nn::Linear(hidden_size, mlp_hidden_size));
  auto dw = register_module("dwconv", plain("SegformerDWConv"));
  dwconv = dw->register_module("dwconv", torch::nn::Conv2d(torch::nn::Conv2dOptions(mlp_hidden_size, mlp_hidden_size, 3)
                                                               .stride(1)
                                                               .padding(1)
                                                               .groups(mlp_hidden_size)));
  dense2 = register_module("dense2", torch::nn::Linear(mlp_hidden_size, hidden_size));
}

torch::Tensor SegformerMixFFNImpl::forward(const torch::Tensor& x, int64_t height, int64_t width) {
  torch::Tensor h;
  {
    EM_PROFILE_SCOPE("segformer.mix_ffn.dense");
    h = dense1->forward(x);
  }
  const int64_t n = h.size(0), c = h.size(2);
  torch::Tensor map;
  {
    EM_PROFILE_SCOPE("segformer.mix_ffn.dwconv");
    map = dwconv->forward(h.transpose(1, 2).reshape({n, c, height, width}));
  }
  {
    EM_PROFILE_SCOPE("segformer.mix_ffn.activation");
    h = activate(map.flatten(2).transpose(1, 2), activation);
  }
  EM_PROFILE_SCOPE("segformer.mix_ffn.dense");
  h = maybe_dropout(h, hidden_dropout, is_training());
  return maybe_dropout(dense2->forward(h), hidden_dropout, is_training());
}

SegformerLayerImpl::SegformerLayerImpl(const SegformerConfig& config, int64_t hidden_size, int64_t heads,
                                       double drop_path_prob, int64_t sr_ratio, int64_t mlp_ratio)
    : drop_path(drop_path_prob) {
  layer_norm_1 = register_module("layer_norm_1", layer_norm(hidden_size));
  attention = register_module("attention", SegformerAttention(config, hidden_size, heads, sr_ratio));
  layer_norm_2 = register_module("layer_norm_2", layer_norm(hidden_size));
  mlp = register_module("mlp", SegformerMixFFN(config, hidden_size, hidden_size * mlp_ratio));
}

torch::Tensor SegformerLayerImpl::forward(const torch::Tensor& x, int64_t height, int64_t width) {
  const bool training = is_training();
  torch::Tensor a = models::drop_path(attention->forward(norm(layer_norm_1, x), height, width), drop_path, training);
  EM_PROFILE_SCOPE("segformer.residual");
  torch::Tensor h = a + x;
  torch::Tensor f = models::drop_path(mlp->forward(norm(layer_norm_2, h), height, width), drop_path, training);
  return f + h;
}

SegformerModelImpl::SegformerModelImpl(const SegformerConfig& config) : num_channels_(config.num_channels) {
  config.validate("segformer config");
  auto encoder = register_module("encoder", plain("SegformerEncoder"));
  // HF's stochastic depth rule: torch.linspace(0, drop_path_rate, sum(depths)) in fp32, one value per layer.
  int64_t total = 0;
  for (auto d : config.depths) total += d;
  torch::Tensor rates = torch::linspace(0.0, config.drop_path_rate, total, torch::kFloat32);
  torch::nn::ModuleList embeddings_list, block_list, norm_list;
  int64_t layer_index = 0;
  for (int64_t i = 0; i < config.num_encoder_blocks; ++i) {
    patch_embeddings.push_back(SegformerOverlapPatchEmbeddings(
        config.patch_sizes[i], config.strides[i], i == 0 ? config.num_channels : config.hidden_sizes[i - 1],
        config.hidden_sizes[i]));
    embeddings_list->push_back(patch_embeddings.back());
    torch::nn::ModuleList layers;
    blocks.emplace_back();
    for (int64_t j = 0; j < config.depths[i]; ++j) {
      blocks.back().push_back(SegformerLayer(config, config.hidden_sizes[i], config.num_attention_heads[i],
                                             rates[layer_index++].item<double>(), config.sr_ratios[i],
                                             config.mlp_ratios[i]));
      layers->push_back(blocks.back().back());
    }
    block_list->push_back(layers);
    stage_norms.push_back(layer_norm(config.hidden_sizes[i]));
    norm_list->push_back(stage_norms.back());
  }
  encoder->register_module("patch_embeddings", embeddings_list);
  encoder->register_module("block", block_list);
  encoder->register_module("layer_norm", norm_list);
}

std::vector<torch::Tensor> SegformerModelImpl::forward(const torch::Tensor& pixel_values) {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != num_channels_)
    fail("segformer: pixel_values must be [N, {}, H, W], got [{}]", num_channels_,
         fmt::join(pixel_values.sizes(), ", "));
  // A channels-last input keeps every stage map channels-last (the token layout itself); NCHW inputs get NCHW maps,
  // as HF's .contiguous() makes them.
  const bool channels_last =
      pixel_values.is_contiguous(torch::MemoryFormat::ChannelsLast) && !pixel_values.is_contiguous();
  const int64_t n = pixel_values.size(0);
  std::vector<torch::Tensor> stages;
  torch::Tensor x = pixel_values;
  for (size_t i = 0; i < patch_embeddings.size(); ++i) {
    auto [tokens, h, w] = patch_embeddings[i]->forward(x);
    for (auto& layer : blocks[i]) tokens = layer->forward(tokens, h, w);
    tokens = norm(stage_norms[i], tokens);
    x = tokens.reshape({n, h, w, -1}).permute({0, 3, 1, 2});
    EM_PROFILE_SCOPE("segformer.stage_output");
    if (!channels_last) x = x.contiguous();
    stages.push_back(x);
  }
  return stages;
}

SegformerDecodeHeadImpl::SegformerDecodeHeadImpl(const SegformerConfig& config)
    : classifier_dropout(config.classifier_dropout_prob) {
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < config.num_encoder_blocks; ++i) {
    auto mlp = plain("SegformerMLP");
    linear_c.push_back(
        mlp->register_module("proj", torch::nn::Linear(config.hidden_sizes[i], config.decoder_hidden_size)));
    list->push_back(mlp);
  }
  register_module("linear_c", list);
  linear_fuse = register_module(
      "linear_fuse", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.decoder_hidden_size * config.num_encoder_blocks,
                                                                config.decoder_hidden_size, 1)
                                           .bias(false)));
  batch_norm = register_module("batch_norm", torch::nn::BatchNorm2d(config.decoder_hidden_size));
  classifier = register_module(
      "classifier", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.decoder_hidden_size, config.num_labels(), 1)));
}

torch::Tensor SegformerDecodeHeadImpl::forward(const std::vector<torch::Tensor>& stages) {
  if (stages.size() != linear_c.size())
    fail("segformer decode head: expected {} stage maps, got {}", linear_c.size(), stages.size());
  const int64_t out_h = stages[0].size(2), out_w = stages[0].size(3);
  const int64_t k = static_cast<int64_t>(stages.size());
  const int64_t hidden = linear_fuse->weight.size(0);
  const bool training = is_training();
  // HF: linear_fuse (a 1x1 conv, no bias) on the concatenation of every stage's projection resampled to the first
  // stage's size. The 1x1 conv, the projection and bilinear resampling are all linear per pixel, and resampling keeps
  // constants, so linear_fuse's slice for stage i folds into that stage's projection, applied at the stage's own
  // resolution before resampling: the same sum without the [N, k * hidden, H/4, W/4] concatenation and the
  // k * hidden -> hidden conv on it (about half of mit-b0's multiply-adds). Outside training the BatchNorm (an affine
  // map per channel then) folds in too. The folded weights are computed in fp32, outside autocast.
  std::vector<torch::Tensor> weights(stages.size()), biases(stages.size());
  {
    EM_PROFILE_SCOPE("segformer.decode_head.fold");
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    torch::Tensor fuse = linear_fuse->weight.view({hidden, k * hidden});
    torch::Tensor scale, shift;
    if (!training) {
      scale = batch_norm->weight * (batch_norm->running_var + batch_norm->options.eps()).rsqrt();
      shift = batch_norm->bias - batch_norm->running_mean * scale;
      fuse = fuse * scale.unsqueeze(1);
    }
    for (int64_t i = 0; i < k; ++i) {
      // HF concatenates the last stage first.
      torch::Tensor slice = fuse.slice(1, (k - 1 - i) * hidden, (k - i) * hidden);
      weights[i] = torch::mm(slice, linear_c[i]->weight);
      biases[i] = torch::mv(slice, linear_c[i]->bias);
      if (i == 0 && shift.defined()) biases[i] = biases[i] + shift;
    }
  }
  torch::Tensor sum;
  for (int64_t i = 0; i < k; ++i) {
    const auto& s = stages[i];
    const int64_t n = s.size(0), h = s.size(2), w = s.size(3);
    torch::Tensor m;
    {
      EM_PROFILE_SCOPE("segformer.decode_head.mlp");
      // [N, C, h, w] -> [N, h*w, C] tokens (a view for channels-last maps) -> [N, hidden, h, w] channels-last.
      m = torch::linear(s.permute({0, 2, 3, 1}).reshape({n, h * w, s.size(1)}), weights[i], biases[i])
              .view({n, h, w, hidden})
              .permute({0, 3, 1, 2});
    }
    EM_PROFILE_SCOPE("segformer.decode_head.upsample_sum");
    // Bilinear resampling to the same size is the identity (align_corners false puts every source sample on its
    // target): the first stage needs none.
    if (h != out_h || w != out_w) m = torch::upsample_bilinear2d(m, {out_h, out_w}, /*align_corners=*/false);
    // In place: each full-size temporary is a fresh allocation, and on Linux a fresh large block costs page faults
    // that take longer than the add itself. Safe under autograd (neither the projection's nor the resampling's
    // backward reads its output).
    sum = sum.defined() ? sum.add_(m) : m;
  }
  EM_PROFILE_SCOPE("segformer.decode_head.classifier");
  torch::Tensor h = (training ? dist::batch_norm_2d(*batch_norm, sum) : sum).relu_();
  return classifier->forward(maybe_dropout(h, classifier_dropout, training));
}

SegformerForSemanticSegmentationImpl::SegformerForSemanticSegmentationImpl(SegformerConfig config)
    : config_(std::move(config)) {
  config_.validate("segformer config");
  segformer = register_module("segformer", SegformerModel(config_));
  decode_head = register_module("decode_head", SegformerDecodeHead(config_));
  init_segformer_weights(*this, config_.initializer_range);
}

torch::Tensor SegformerForSemanticSegmentationImpl::forward(const torch::Tensor& pixel_values) {
  return decode_head->forward(segformer->forward(pixel_values));
}

void init_segformer_weights(torch::nn::Module& module, double initializer_range) {
  if (skip_init()) return;  // a checkpoint fills every tensor next
  torch::NoGradGuard no_grad;
  // include_self=false: called from the constructor, before the module is owned by a shared_ptr.
  for (auto& m : module.modules(/*include_self=*/false)) {
    torch::Tensor weight, bias;
    if (auto* linear = m->as<torch::nn::Linear>()) {
      weight = linear->weight;
      bias = linear->bias;
    } else if (auto* conv = m->as<torch::nn::Conv2d>()) {
      weight = conv->weight;
      bias = conv->bias;
    } else if (auto* norm = m->as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
      continue;
    } else {
      continue;
    }
    weight.normal_(0.0, initializer_range);
    if (bias.defined()) bias.zero_();
  }
}

torch::Tensor upsample_logits(const torch::Tensor& logits, int64_t height, int64_t width) {
  if (logits.dim() != 4) fail("segformer: logits must be [N, L, h, w], got [{}]", fmt::join(logits.sizes(), ", "));
  if (height < 1 || width < 1) fail("segformer: cannot upsample logits to {}x{}", height, width);
  return torch::upsample_bilinear2d(logits, {height, width}, /*align_corners=*/false);
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& labels, int64_t ignore_index) {
  if (logits.dim() != 4)
    fail("segmentation loss: logits must be [N, L, h, w], got [{}]", fmt::join(logits.sizes(), ", "));
  if (labels.dim() != 3 || labels.size(0) != logits.size(0) || labels.scalar_type() != torch::kInt64)
    fail("segmentation loss: labels must be int64 [N={}, H, W], got {} [{}]", logits.size(0),
         c10::toString(labels.scalar_type()), fmt::join(labels.sizes(), ", "));
  // The loss always runs in fp32: under autocast the logits may be bf16, and the mean over ~10^5 pixels wants fp32.
  torch::Tensor up = upsample_logits(logits.to(torch::kFloat32), labels.size(1), labels.size(2));
  torch::Tensor valid = labels != ignore_index;
  if (logits.size(1) == 1) {
    // HF's num_labels == 1 branch: BCE-with-logits, masked, averaged over every pixel.
    valid = valid & (labels >= 0);
    torch::Tensor loss = torch::binary_cross_entropy_with_logits(up.squeeze(1), labels.to(torch::kFloat32), {}, {},
                                                                 at::Reduction::None);
    return (loss * valid.to(torch::kFloat32)).mean();
  }
  // sum / max(count, 1) equals HF's mean with ignore_index when any pixel is valid, and is 0 (not NaN) otherwise,
  // without a device sync.
  torch::Tensor sum = torch::nn::functional::cross_entropy(
      up, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index).reduction(torch::kSum));
  return sum / valid.sum().clamp_min(1).to(torch::kFloat32);
}

}  // namespace em::models
