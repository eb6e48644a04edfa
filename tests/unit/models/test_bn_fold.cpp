// SegFormer's decode head folds linear_fuse (and, outside training, its BatchNorm) into the per-stage projections
// before resampling: it must compute what HF's concatenate -> 1x1 conv -> BatchNorm -> ReLU -> classifier computes,
// outputs and gradients alike.
#include <catch2/catch.hpp>

#include <algorithm>

#include <torch/torch.h>

#include "em/models/segformer.hpp"
#include "em/tensor/autocast.hpp"
#include "unit/models/model_test_support.hpp"

using em::test::max_abs_diff;

namespace {

// HF's SegformerDecodeHead.forward, written out with the module's own parameters (dropout 0).
torch::Tensor hf_decode_head(em::models::SegformerDecodeHeadImpl& head, const std::vector<torch::Tensor>& stages,
                             bool training) {
  const int64_t out_h = stages[0].size(2), out_w = stages[0].size(3);
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& s = stages[i];
    const int64_t n = s.size(0), h = s.size(2), w = s.size(3);
    torch::Tensor m = head.linear_c[i]->forward(s.flatten(2).transpose(1, 2)).permute({0, 2, 1}).reshape({n, -1, h, w});
    m = torch::upsample_bilinear2d(m, {out_h, out_w}, false);
    parts.insert(parts.begin(), m);  // last stage first
  }
  torch::Tensor fused = torch::conv2d(torch::cat(parts, 1), head.linear_fuse->weight);
  auto& bn = *head.batch_norm;
  torch::Tensor normed = torch::batch_norm(fused, bn.weight, bn.bias, bn.running_mean.clone(), bn.running_var.clone(),
                                           training, 0.1, bn.options.eps(), false);
  return head.classifier->forward(torch::relu(normed));
}

struct Setup {
  em::models::SegformerForSemanticSegmentation model{nullptr};
  std::vector<torch::Tensor> stages;
};

Setup setup(bool channels_last) {
  torch::manual_seed(7);
  em::models::SegformerConfig c = em::test::tiny_segformer_config({1, 2});
  c.classifier_dropout_prob = 0.0;
  c.set_labels(em::test::numbered_labels(5));
  Setup s{em::models::SegformerForSemanticSegmentation(c), {}};
  auto& bn = *s.model->decode_head->batch_norm;
  {
    torch::NoGradGuard no_grad;
    // A BatchNorm that is not the identity: the fold must carry its statistics and affine map.
    bn.running_mean.normal_(0.0, 0.5);
    bn.running_var.uniform_(0.5, 2.0);
    bn.weight.uniform_(0.5, 1.5);
    bn.bias.normal_(0.0, 0.5);
  }
  torch::Tensor x = torch::randn({2, 3, 37, 45});
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard no_grad;
  s.stages = s.model->segformer->forward(x);
  return s;
}

}  // namespace

TEST_CASE("segformer decode head folded for inference equals HF's concatenate, conv and BatchNorm to 1e-5",
          "[models][segformer][bn_fold]") {
  for (bool channels_last : {false, true}) {
    Setup s = setup(channels_last);
    auto& head = *s.model->decode_head;
    head.eval();
    torch::NoGradGuard no_grad;
    torch::Tensor ours = head.forward(s.stages);
    torch::Tensor ref = hf_decode_head(head, s.stages, false);
    REQUIRE(ours.sizes() == ref.sizes());
    const double scale = ref.abs().max().item<double>();
    CHECK(max_abs_diff(ours, ref) <= 1e-5 * scale + 1e-7);
  }
}

TEST_CASE("segformer decode head in training gives HF's outputs and parameter gradients",
          "[models][segformer][bn_fold]") {
  Setup s = setup(false);
  auto& head = *s.model->decode_head;
  head.train();
  torch::Tensor target = torch::randn({2, 5, 10, 12});
  auto grads = [&](bool hf) {
    for (auto& p : head.parameters()) p.mutable_grad() = torch::Tensor();
    torch::Tensor out = hf ? hf_decode_head(head, s.stages, true) : head.forward(s.stages);
    (out * target).sum().backward();
    std::vector<torch::Tensor> g{out.detach()};
    for (auto& p : head.parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto ref = grads(true);
  auto ours = grads(false);
  REQUIRE(ours.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO("tensor " << i << " (0 = output, then the parameters in order)");
    // At least 1: the projections' biases get a zero gradient in exact arithmetic (training BatchNorm removes a
    // per-channel constant), so theirs is rounding noise on both sides.
    const double scale = std::max(ref[i].abs().max().item<double>(), 1.0);
    CHECK(max_abs_diff(ours[i], ref[i]) <= 1e-5 * scale);
  }
}

TEST_CASE("segformer decode head folded under bf16 autocast stays close to fp32", "[models][segformer][bn_fold]") {
  Setup s = setup(true);
  auto& head = *s.model->decode_head;
  head.eval();
  torch::NoGradGuard no_grad;
  torch::Tensor ref = hf_decode_head(head, s.stages, false);
  torch::Tensor ours;
  {
    em::tensor::Bf16Autocast autocast(true);
    ours = head.forward(s.stages);
  }
  CHECK(ours.scalar_type() == torch::kBFloat16);
  CHECK(max_abs_diff(ours, ref) <= 0.02 * ref.abs().max().item<double>());
}
