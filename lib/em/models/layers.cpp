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

}  // namespace em::models
