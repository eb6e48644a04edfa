#include "em/models/resnet.hpp"

#include "em/core/error.hpp"
#include "em/dist/sync_batchnorm.hpp"

#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::models {
namespace {

// Applies the activation in place where the input is a fresh temporary that nobody else reads (after BatchNorm or
// the residual sum): saves one allocation per layer. ReLU's backward only needs the output, so in place is safe.
torch::Tensor activate_(torch::Tensor x, Activation act) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x.relu_();
    case Activation::gelu: return torch::gelu(x);
    case Activation::gelu_tanh: return torch::gelu(x, "tanh");
    case Activation::silu: return torch::silu(x);
    case Activation::tanh: return x.tanh_();
  }
  return x;
}

}  // namespace

// ---------------------------------------------------------------- modules

ResNetConvLayerImpl::ResNetConvLayerImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                         int64_t stride, Activation act)
    : activation(act) {
  convolution = register_module(
      "convolution", Conv2d(Conv2dSpec{in_channels, out_channels, kernel_size, stride, kernel_size / 2, false}));
  normalization = register_module("normalization", torch::nn::BatchNorm2d(out_channels));
}

torch::Tensor ResNetConvLayerImpl::forward(const torch::Tensor& x) {
  return activate_(dist::batch_norm_2d(*normalization, convolution->forward(x)), activation);
}

ResNetShortCutImpl::ResNetShortCutImpl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  convolution =
      register_module("convolution", Conv2d(Conv2dSpec{in_channels, out_channels, 1, stride, 0, false}));
  normalization = register_module("normalization", torch::nn::BatchNorm2d(out_channels));
}

torch::Tensor ResNetShortCutImpl::forward(const torch::Tensor& x) {
  return dist::batch_norm_2d(*normalization, convolution->forward(x));
}

ResNetResidualLayerImpl::ResNetResidualLayerImpl(const ResNetConfig& config, int64_t in_channels,
                                                 int64_t out_channels, int64_t stride)
    : activation(parse_activation(config.hidden_act, "resnet config")) {
  if (in_channels != out_channels || stride != 1)
    shortcut = register_module("shortcut", ResNetShortCut(in_channels, out_channels, stride));
  // As in HF, the inner conv layers use ReLU whatever hidden_act says; hidden_act applies after the sum.
  if (config.layer_type == "bottleneck") {
    const int64_t reduced = out_channels / 4;
    const bool first = config.downsample_in_bottleneck;
    convs.push_back(ResNetConvLayer(in_channels, reduced, 1, first ? stride : 1, Activation::relu));
    convs.push_back(ResNetConvLayer(reduced, reduced, 3, first ? 1 : stride, Activation::relu));
    convs.push_back(ResNetConvLayer(reduced, out_channels, 1, 1, Activation::none));
  } else {
    convs.push_back(ResNetConvLayer(in_channels, out_channels, 3, stride, Activation::relu));
    convs.push_back(ResNetConvLayer(out_channels, out_channels, 3, 1, Activation::none));
  }
  torch::nn::ModuleList layer;
  for (auto& c : convs) layer->push_back(c);
  register_module("layer", layer);
}

torch::Tensor ResNetResidualLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (auto& conv : convs) h = conv->forward(h);
  // h is the last BatchNorm's fresh output: add the residual into it instead of allocating a sum.
  h.add_(shortcut ? shortcut->forward(x) : x);
  return activate_(std::move(h), activation);
}

ResNetStageImpl::ResNetStageImpl(const ResNetConfig& config, int64_t in_channels, int64_t out_channels,
                                 int64_t stride, int64_t depth) {
  torch::nn::ModuleList layers;
  for (int64_t i = 0; i < depth; ++i) {
    blocks.push_back(ResNetResidualLayer(config, i == 0 ? in_channels : out_channels, out_channels,
                                         i == 0 ? stride : 1));
    layers->push_back(blocks.back());
  }
  register_module("layers", layers);
}

torch::Tensor ResNetStageImpl::forward(torch::Tensor x) {
  for (auto& block : blocks) x = block->forward(x);
  return x;
}

ResNetModelImpl::ResNetModelImpl(const ResNetConfig& config) : num_channels_(config.num_channels) {
  config.validate("resnet config");
  // HF nests the stem as embedder.embedder (ResNetEmbeddings holds the conv layer and the max pool).
  auto embedder = register_module("embedder", std::make_shared<torch::nn::Module>("ResNetEmbeddings"));
  stem = embedder->register_module(
      "embedder",
      ResNetConvLayer(config.num_channels, config.embedding_size, 7, 2, parse_activation(config.hidden_act, "")));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>("ResNetEncoder"));
  torch::nn::ModuleList list;
  int64_t in = config.embedding_size;
  for (size_t s = 0; s < config.depths.size(); ++s) {
    const int64_t stride = s == 0 && !config.downsample_in_first_stage ? 1 : 2;
    stages.push_back(ResNetStage(config, in, config.hidden_sizes[s], stride, config.depths[s]));
    list->push_back(stages.back());
    in = config.hidden_sizes[s];
  }
  encoder->register_module("stages", list);
}

torch::Tensor ResNetModelImpl::embed(const torch::Tensor& pixel_values) {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != num_channels_)
    fail("resnet: pixel_values must be [N, {}, H, W], got [{}]", num_channels_, fmt::join(pixel_values.sizes(), ", "));
  return torch::max_pool2d(stem->forward(pixel_values), 3, 2, 1);
}

torch::Tensor ResNetModelImpl::forward(const torch::Tensor& pixel_values) {
  torch::Tensor h = embed(pixel_values);
  for (auto& stage : stages) h = stage->forward(h);
  return torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
}

std::vector<torch::Tensor> ResNetModelImpl::forward_stages(const torch::Tensor& pixel_values) {
  std::vector<torch::Tensor> out;
  torch::Tensor h = embed(pixel_values);
  for (auto& stage : stages) out.push_back(h = stage->forward(h));
  return out;
}

ResNetForImageClassificationImpl::ResNetForImageClassificationImpl(ResNetConfig config)
    : config_(std::move(config)) {
  config_.validate("resnet config");
  resnet = register_module("resnet", ResNetModel(config_));
  auto head = register_module("classifier", std::make_shared<torch::nn::Module>("Sequential"));
  if (config_.num_labels() > 0)
    classifier = head->register_module("1", torch::nn::Linear(config_.hidden_sizes.back(), config_.num_labels()));
  init_resnet_weights(*this);
}

torch::Tensor ResNetForImageClassificationImpl::forward(const torch::Tensor& pixel_values) {
  torch::Tensor pooled = resnet->forward(pixel_values);
  return classifier ? classifier->forward(pooled) : pooled;
}

void init_resnet_weights(torch::nn::Module& module) {
  if (skip_init()) return;  // a checkpoint fills every tensor next
  torch::NoGradGuard no_grad;
  // include_self=false: called from the constructor, before the module is owned by a shared_ptr.
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

}  // namespace em::models
