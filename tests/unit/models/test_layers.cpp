// Layers built for training initialise exactly as LibTorch's own; built to be loaded, they draw nothing.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "em/models/layers.hpp"

using em::models::Conv2d;
using em::models::Conv2dSpec;

TEST_CASE("Conv2d draws the same initial weights and random stream as torch::nn::Conv2d", "[models][layers]") {
  for (bool bias : {false, true}) {
    torch::manual_seed(11);
    torch::nn::Conv2d reference(torch::nn::Conv2dOptions(6, 10, 3).stride(2).padding(1).bias(bias));
    const torch::Tensor after_reference = torch::rand({4});
    torch::manual_seed(11);
    Conv2d ours(Conv2dSpec{6, 10, 3, 2, 1, bias});
    const torch::Tensor after_ours = torch::rand({4});
    CHECK(torch::equal(ours->weight, reference->weight));
    if (bias) CHECK(torch::equal(ours->bias, reference->bias));
    CHECK_FALSE(ours->bias.defined() != bias);
    CHECK(torch::equal(after_ours, after_reference));  // the next layer's weights are unchanged too
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 6, 9, 7});
    CHECK(torch::equal(ours->forward(x), reference->forward(x)));
    CHECK(ours->named_parameters().size() == reference->named_parameters().size());
  }
}

TEST_CASE("under SkipInit layers draw no random numbers and the guard restores the previous state",
          "[models][layers]") {
  torch::manual_seed(5);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(5);
  CHECK_FALSE(em::models::skip_init());
  {
    em::models::SkipInit outer;
    {
      em::models::SkipInit inner;
      CHECK(em::models::skip_init());
    }
    CHECK(em::models::skip_init());
    Conv2d conv(Conv2dSpec{64, 64, 3, 1, 1, true});
    CHECK(conv->weight.sizes() == torch::IntArrayRef({64, 64, 3, 3}));
  }
  CHECK_FALSE(em::models::skip_init());
  CHECK(torch::equal(torch::rand({4}), expected));
}
