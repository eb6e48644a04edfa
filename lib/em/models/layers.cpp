#include "em/models/layers.hpp"

#include <cmath>

#include <torch/torch.h>

namespace em::models {
namespace {
thread_local bool g_skip_init = false;
}

SkipInit::SkipInit() : previous_(g_skip_init) { g_skip_init = true; }
SkipInit::~SkipInit() { g_skip_init = previous_; }
bool skip_init() { return g_skip_init; }

Conv2dImpl::Conv2dImpl(Conv2dSpec s) : spec(s) { reset(); }

void Conv2dImpl::reset() {
  weight = register_parameter(
      "weight", torch::empty({spec.out_channels, spec.in_channels, spec.kernel_size, spec.kernel_size}));
  if (spec.bias) bias = register_parameter("bias", torch::empty({spec.out_channels}));
  if (skip_init()) return;
  // LibTorch's ConvNdImpl::reset_parameters, step for step, so the random stream is the one it would draw.
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, /*a=*/std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = spec.in_channels * spec.kernel_size * spec.kernel_size;
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight, bias, {spec.stride, spec.stride}, {spec.padding, spec.padding});
}

torch::Tensor activate(const torch::Tensor& x, Activation act) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return torch::relu(x);
    case Activation::gelu: return torch::gelu(x);
    case Activation::gelu_tanh: return torch::gelu(x, "tanh");
    case Activation::silu: return torch::silu(x);
    case Activation::tanh: return torch::tanh(x);
  }
  return x;
}

torch::Tensor layer_norm_in_weight_dtype(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto dtype = norm->weight.scalar_type();
  return norm->forward(x.scalar_type() == dtype ? x : x.to(dtype));
}

}  // namespace em::models
