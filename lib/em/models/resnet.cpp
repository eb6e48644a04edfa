#include "em/models/resnet.hpp"

#include "em/core/error.hpp"
#include "em/dist/sync_batchnorm.hpp"
#include "em/models/config_fields.hpp"

#include <set>

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

// ---------------------------------------------------------------- config

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
