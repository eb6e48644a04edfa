// DETR's box ops, GIoU, Hungarian matcher, set-prediction loss and post-processing: hand-checked cases and the
// original DETR's SetCriterion / HF's post_process_object_detection on the same tensors
// (tests/golden/detr_reference.json from scripts/golden/detr_reference.py).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/models/detr_loss.hpp"
#include "unit/models/model_test_support.hpp"

using namespace em::models;
using Catch::Matchers::Contains;
using em::test::max_abs_diff;

namespace {

const em::io::Json& golden() {
  static const em::io::Json j =
      em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/detr_reference.json");
  return j;
}

// A nested JSON array of numbers -> tensor of that shape (an empty list becomes [0, inner...] via `empty_shape`).
torch::Tensor tensor_of(const em::io::Json& j, torch::Dtype dtype, std::vector<int64_t> empty_shape = {0}) {
  std::vector<double> values;
  std::vector<int64_t> shape;
  const em::io::Json* level = &j;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
    level = &level->front();
  }
  std::function<void(const em::io::Json&)> flatten = [&](const em::io::Json& v) {
    if (v.is_array())
      for (const auto& e : v) flatten(e);
    else
      values.push_back(v.get<double>());
  };
  flatten(j);
  if (values.empty()) return torch::zeros(empty_shape, dtype);
  return torch::tensor(values, torch::kDouble).view(shape).to(dtype);
}

DetrOutput output_of(const em::io::Json& c) {
  DetrOutput out;
  out.logits = tensor_of(c.at("logits"), torch::kFloat);
  out.pred_boxes = tensor_of(c.at("pred_boxes"), torch::kFloat);
  for (const auto& a : c.at("aux_outputs"))
    out.auxiliary_outputs.push_back({tensor_of(a.at("logits"), torch::kFloat), tensor_of(a.at("pred_boxes"), torch::kFloat)});
  return out;
}

std::vector<DetrTarget> targets_of(const em::io::Json& c) {
  std::vector<DetrTarget> targets;
  for (const auto& t : c.at("targets"))
    targets.push_back({tensor_of(t.at("labels"), torch::kLong), tensor_of(t.at("boxes"), torch::kFloat, {0, 4})});
  return targets;
}

DetrLossOptions options_of(const em::io::Json& c) {
  DetrLossOptions o;
  o.num_labels = c.at("num_labels");
  o.costs = {c.at("costs").at("class_cost"), c.at("costs").at("bbox_cost"), c.at("costs").at("giou_cost")};
  o.bbox_loss_coefficient = c.at("bbox_loss_coefficient");
  o.giou_loss_coefficient = c.at("giou_loss_coefficient");
  o.eos_coefficient = c.at("eos_coefficient");
  return o;
}

}  // namespace

TEST_CASE("box conversions and GIoU on hand-checked boxes", "[detr]") {
  auto xyxy = box_cxcywh_to_xyxy(torch::tensor({{0.5, 0.25, 0.5, 0.5}}, torch::kFloat));
  CHECK(torch::allclose(xyxy, torch::tensor({{0.25, 0.0, 0.75, 0.5}}, torch::kFloat)));
  CHECK(torch::allclose(box_xyxy_to_cxcywh(xyxy), torch::tensor({{0.5, 0.25, 0.5, 0.5}}, torch::kFloat)));

  auto a = torch::tensor({{0.0, 0.0, 2.0, 2.0}, {0.0, 0.0, 1.0, 1.0}}, torch::kDouble);
  auto b = torch::tensor({{1.0, 1.0, 3.0, 3.0}, {2.0, 0.0, 3.0, 1.0}, {0.0, 0.0, 2.0, 2.0}}, torch::kDouble);
  auto g = generalized_box_iou(a, b);
  REQUIRE(g.sizes() == torch::IntArrayRef({2, 3}));
  // [0,0,2,2] vs [1,1,3,3]: intersection 1, union 7, enclosing 9 -> 1/7 - 2/9 = -5/63.
  CHECK(g[0][0].item<double>() == Approx(-5.0 / 63.0).margin(1e-15));
  // [0,0,2,2] vs [2,0,3,1]: touching, intersection 0, union 5, enclosing 3 x 2 = 6 -> -1/6.
  CHECK(g[0][1].item<double>() == Approx(-1.0 / 6.0).margin(1e-15));
  CHECK(g[0][2].item<double>() == Approx(1.0).margin(1e-15));  // identical boxes
  // [0,0,1,1] vs [2,0,3,1]: disjoint, union 2, enclosing 3 -> -1/3.
  CHECK(g[1][1].item<double>() == Approx(-1.0 / 3.0).margin(1e-15));
  // [0,0,1,1] inside [0,0,2,2]: IoU 1/4, enclosing = union -> 1/4.
  CHECK(g[1][2].item<double>() == Approx(0.25).margin(1e-15));
  auto [iou, uni] = box_iou(a, b);
  CHECK(iou[0][0].item<double>() == Approx(1.0 / 7.0).margin(1e-15));
  CHECK(uni[0][0].item<double>() == Approx(7.0).margin(1e-15));
  // The paired form is the diagonal.
  auto paired = generalized_box_iou_paired(a, b.slice(0, 1, 3));
  CHECK(paired[0].item<double>() == Approx(-1.0 / 6.0).margin(1e-15));
  CHECK(paired[1].item<double>() == Approx(0.25).margin(1e-15));

  CHECK_THROWS_WITH(generalized_box_iou(torch::tensor({{1.0, 0.0, 0.5, 1.0}}), b), Contains("x1 < x0"));
  CHECK_THROWS_WITH(generalized_box_iou(torch::tensor({{std::nan(""), 0.0, 0.5, 1.0}}), b), Contains("NaN"));
  CHECK_THROWS_WITH(generalized_box_iou(torch::zeros({2, 3}), b), Contains("[N, 4]"));
}

TEST_CASE("GIoU and IoU equal the original box_ops on random boxes", "[detr]") {
  const auto& g = golden().at("giou");
  auto a = tensor_of(g.at("boxes1"), torch::kFloat), b = tensor_of(g.at("boxes2"), torch::kFloat);
  CHECK(max_abs_diff(generalized_box_iou(a, b), tensor_of(g.at("giou"), torch::kFloat)) <= 1e-6);
  CHECK(max_abs_diff(box_iou(a, b).first, tensor_of(g.at("iou"), torch::kFloat)) <= 1e-6);
}

TEST_CASE("detr loss on a hand-checked case: matching, weighted CE, L1, GIoU, cardinality", "[detr]") {
  // One class + "no object". Query 0: logits (0, 0) -> p = 1/2; query 1: (ln 3, 0) -> p(class) = 3/4.
  // Target: class 0, box (0.5, 0.5, 0.4, 0.5). Query 1's box (0.5, 0.5, 0.4, 0.4) has L1 0.1 and GIoU 0.8
  // (cost 5 * 0.1 - 0.75 - 2 * 0.8 = -1.85); query 0's box (0.5, 0.5, 0.2, 0.2) has L1 0.5 and GIoU 0.2
  // (cost 2.5 - 0.5 - 0.4 = 1.6): query 1 is matched.
  DetrOutput out;
  out.logits = torch::tensor({0.0, 0.0, std::log(3.0), 0.0}, torch::kFloat).view({1, 2, 2}).requires_grad_(true);
  out.pred_boxes = torch::tensor({0.5, 0.5, 0.2, 0.2, 0.5, 0.5, 0.4, 0.4}, torch::kFloat).view({1, 2, 4}).requires_grad_(true);
  std::vector<DetrTarget> targets{{torch::tensor({0}, torch::kLong), torch::tensor({{0.5, 0.5, 0.4, 0.5}}, torch::kFloat)}};
  DetrLossOptions options;
  options.num_labels = 1;

  auto cost = detr_match_cost(out.logits[0], out.pred_boxes[0], targets[0], options.costs);
  CHECK(cost[0][0].item<double>() == Approx(1.6).margin(1e-6));
  CHECK(cost[1][0].item<double>() == Approx(-1.85).margin(1e-6));

  DetrLoss loss = detr_loss(out, targets, options);
  REQUIRE(loss.matches.size() == 1);
  CHECK(loss.matches[0].query_indices.item<int64_t>() == 1);
  CHECK(loss.matches[0].target_indices.item<int64_t>() == 0);
  // CE: query 0 targets "no object" (weight 0.1, -log 1/2), query 1 class 0 (weight 1, -log 3/4); weighted mean.
  const double ce = (0.1 * std::log(2.0) + std::log(4.0 / 3.0)) / 1.1;
  CHECK(loss.terms.at("loss_ce").item<double>() == Approx(ce).margin(1e-6));
  CHECK(loss.terms.at("loss_bbox").item<double>() == Approx(0.1).margin(1e-6));
  CHECK(loss.terms.at("loss_giou").item<double>() == Approx(0.2).margin(1e-6));
  // argmax of query 0 is class 0 (first of a tie), of query 1 class 0: 2 predicted boxes for 1 target.
  CHECK(loss.terms.at("cardinality_error").item<double>() == 1.0);
  CHECK(loss.total.item<double>() == Approx(ce + 5 * 0.1 + 2 * 0.2).margin(1e-6));
  CHECK(loss.terms.size() == 4);

  loss.total.backward();
  CHECK(out.logits.grad().abs().sum().item<double>() > 0);
  // Only the matched query's box gets a box gradient.
  CHECK(out.pred_boxes.grad()[0][0].abs().sum().item<double>() == 0);
  CHECK(out.pred_boxes.grad()[0][1].abs().sum().item<double>() > 0);
}

TEST_CASE("detr loss equals the original SetCriterion with HungarianMatcher (and HF's weighted total)", "[detr]") {
  for (const auto& c : golden().at("loss_cases")) {
    INFO(c.at("name").get<std::string>());
    DetrOutput out = output_of(c);
    auto targets = targets_of(c);
    DetrLoss loss = detr_loss(out, targets, options_of(c));
    // Same matching as scipy's on the original's cost matrix.
    REQUIRE(loss.matches.size() == c.at("indices").size());
    for (size_t i = 0; i < loss.matches.size(); ++i) {
      INFO("image " << i);
      const auto& want = c.at("indices")[i];
      auto q = loss.matches[i].query_indices, t = loss.matches[i].target_indices;
      CHECK(std::vector<int64_t>(q.data_ptr<int64_t>(), q.data_ptr<int64_t>() + q.numel()) ==
            want.at("queries").get<std::vector<int64_t>>());
      CHECK(std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()) ==
            want.at("targets").get<std::vector<int64_t>>());
    }
    // Every term of the original's loss dict (class_error aside, which HF does not report) and nothing else.
    CHECK(loss.terms.size() == c.at("losses").size());
    for (auto it = c.at("losses").begin(); it != c.at("losses").end(); ++it) {
      INFO(it.key());
      REQUIRE(loss.terms.count(it.key()) == 1);
      CHECK(loss.terms.at(it.key()).item<double>() == Approx(it.value().get<double>()).margin(1e-5));
    }
    CHECK(loss.total.item<double>() == Approx(c.at("total").get<double>()).margin(1e-5));
  }
}

TEST_CASE("detr loss takes bf16 outputs and rejects malformed targets with the image named", "[detr]") {
  const auto& c = golden().at("loss_cases")[0];
  DetrOutput out = output_of(c);
  auto targets = targets_of(c);
  auto options = options_of(c);
  DetrOutput half = out;
  half.logits = out.logits.to(torch::kBFloat16);
  half.pred_boxes = out.pred_boxes.to(torch::kBFloat16);
  half.auxiliary_outputs.clear();
  DetrOutput rounded = half;
  rounded.logits = half.logits.to(torch::kFloat);
  rounded.pred_boxes = half.pred_boxes.to(torch::kFloat);
  auto a = detr_loss(half, targets, options), b = detr_loss(rounded, targets, options);
  CHECK(a.total.scalar_type() == torch::kFloat);
  CHECK(a.total.item<double>() == Approx(b.total.item<double>()).margin(1e-6));

  auto bad = targets;
  bad[1].labels = bad[1].labels.clone();
  bad[1].labels[0] = options.num_labels;  // "no object" is not a target class
  CHECK_THROWS_WITH(detr_loss(out, bad, options), Contains("image 1") && Contains("outside 0..2"));
  bad = targets;
  bad[0].boxes = bad[0].boxes.slice(1, 0, 3);
  CHECK_THROWS_WITH(detr_loss(out, bad, options), Contains("image 0") && Contains("[M, 4]"));
  CHECK_THROWS_WITH(detr_loss(out, {targets[0]}, options), Contains("1 targets for a batch of 2"));
}

TEST_CASE("post-processing keeps score > threshold with boxes in original pixels (hand case and HF's function)",
          "[detr]") {
  // Query 0: probabilities (0.8, 0.1 | 0.1 no object) -> label 0, score 0.8; query 1: (0.1, 0.1 | 0.8) -> best real
  // class scores 0.1 and is dropped at 0.5.
  auto logits = torch::tensor({std::log(8.0), 0.0, 0.0, 0.0, 0.0, std::log(8.0)}, torch::kFloat).view({1, 2, 3});
  auto boxes = torch::tensor({0.5, 0.25, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0}, torch::kFloat).view({1, 2, 4});
  auto res = post_process_object_detection(logits, boxes, 0.5, {{100.0, 200.0}});
  REQUIRE(res.size() == 1);
  REQUIRE(res[0].scores.numel() == 1);
  CHECK(res[0].scores[0].item<double>() == Approx(0.8).margin(1e-6));
  CHECK(res[0].labels[0].item<int64_t>() == 0);
  CHECK(torch::allclose(res[0].boxes, torch::tensor({{50.0, 0.0, 150.0, 50.0}}, torch::kFloat)));
  // Without sizes the boxes stay relative; at threshold 0 both queries are kept (score > 0).
  auto rel = post_process_object_detection(logits, boxes, 0.0);
  CHECK(rel[0].scores.numel() == 2);
  CHECK(torch::allclose(rel[0].boxes[1], torch::tensor({0.0, 0.0, 1.0, 1.0}, torch::kFloat)));
  CHECK_THROWS_WITH(post_process_object_detection(logits, boxes, 0.5, {{1.0, 2.0}, {3.0, 4.0}}),
                    Contains("2 target sizes"));

  const auto& g = golden().at("post_process");
  std::vector<std::array<double, 2>> sizes;
  for (const auto& s : g.at("target_sizes")) sizes.push_back({s[0].get<double>(), s[1].get<double>()});
  auto got = post_process_object_detection(tensor_of(g.at("logits"), torch::kFloat),
                                           tensor_of(g.at("pred_boxes"), torch::kFloat), g.at("threshold"), sizes);
  REQUIRE(got.size() == g.at("results").size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("image " << i);
    const auto& want = g.at("results")[i];
    REQUIRE(got[i].scores.numel() == static_cast<int64_t>(want.at("scores").size()));
    CHECK(max_abs_diff(got[i].scores, tensor_of(want.at("scores"), torch::kFloat)) <= 1e-6);
    CHECK(torch::equal(got[i].labels, tensor_of(want.at("labels"), torch::kLong)));
    CHECK(max_abs_diff(got[i].boxes, tensor_of(want.at("boxes"), torch::kFloat, {0, 4})) <= 1e-4);
  }
}

TEST_CASE("a tiny DETR lowers its matched loss on one image within a few optimizer steps", "[detr]") {
  // Gradients flow from the matched loss through both heads, the auxiliary outputs, the transformer and the trainable
  // backbone stages; the matching is recomputed every step.
  torch::manual_seed(0);
  DetrConfig config = DetrConfig::builtin("detr-resnet-18-tiny");
  config.d_model = 32;
  config.encoder_attention_heads = config.decoder_attention_heads = 2;
  config.encoder_ffn_dim = config.decoder_ffn_dim = 64;
  config.num_queries = 8;
  config.dropout = 0;
  config.set_labels({"a", "b"});
  DetrForObjectDetection model(config);
  model->train();
  std::vector<torch::Tensor> trainable;
  for (auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::optim::AdamW opt(trainable, torch::optim::AdamWOptions(1e-3).weight_decay(0));
  auto x = torch::randn({1, 3, 64, 64});
  std::vector<DetrTarget> targets{{torch::tensor({0, 1}, torch::kLong),
                                   torch::tensor({{0.3, 0.3, 0.2, 0.2}, {0.7, 0.6, 0.3, 0.4}}, torch::kFloat)}};
  auto options = DetrLossOptions::from_config(config);
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    DetrLoss loss = detr_loss(model->forward(x), targets, options);
    REQUIRE(loss.terms.count("loss_ce_0") == 1);  // one auxiliary output (2 decoder layers)
    if (step == 0) first = loss.total.item<double>();
    last = loss.total.item<double>();
    opt.zero_grad();
    loss.total.backward();
    opt.step();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.65 * first);
}
