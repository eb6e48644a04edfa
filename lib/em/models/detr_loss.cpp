#include "em/models/detr_loss.hpp"

#include "em/core/error.hpp"
#include "em/models/hungarian.hpp"

#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::models {
namespace {

using torch::indexing::Slice;

void require_xyxy(const torch::Tensor& boxes, const char* which) {
  if (boxes.dim() != 2 || boxes.size(1) != 4)
    fail("generalized_box_iou: {} must be [N, 4] (x0, y0, x1, y1), got [{}]", which, fmt::join(boxes.sizes(), ", "));
  // The original asserts this: degenerate boxes give inf/NaN. NaN coordinates fail the comparison too.
  if (boxes.size(0) > 0 && !(boxes.index({Slice(), Slice(2, 4)}) >= boxes.index({Slice(), Slice(0, 2)})).all().item<bool>())
    fail("generalized_box_iou: {} has a box with x1 < x0 or y1 < y0, or a NaN coordinate (non-finite predictions mean "
         "that training diverged)",
         which);
}

void check_target(const DetrTarget& t, size_t image, int64_t num_labels) {
  if (!t.labels.defined() || !t.boxes.defined() || t.labels.dim() != 1 || t.boxes.dim() != 2 || t.boxes.size(1) != 4 ||
      t.boxes.size(0) != t.labels.size(0))
    fail("detr loss: target of image {}: expected labels [M] and boxes [M, 4], got labels [{}] and boxes [{}]", image,
         t.labels.defined() ? fmt::format("{}", fmt::join(t.labels.sizes(), ", ")) : "undefined",
         t.boxes.defined() ? fmt::format("{}", fmt::join(t.boxes.sizes(), ", ")) : "undefined");
  if (t.labels.numel() > 0) {
    const int64_t lo = t.labels.min().item<int64_t>(), hi = t.labels.max().item<int64_t>();
    if (lo < 0 || hi >= num_labels)
      fail("detr loss: target of image {}: label {} is outside 0..{}", image, lo < 0 ? lo : hi, num_labels - 1);
  }
}

// The original's _get_src_permutation_idx: (image index, query index) of every matched pair, on `device`.
std::pair<torch::Tensor, torch::Tensor> matched_queries(const std::vector<DetrMatch>& matches, torch::Device device) {
  std::vector<torch::Tensor> batch, query;
  for (size_t i = 0; i < matches.size(); ++i) {
    batch.push_back(torch::full_like(matches[i].query_indices, static_cast<int64_t>(i)));
    query.push_back(matches[i].query_indices);
  }
  return {torch::cat(batch).to(device), torch::cat(query).to(device)};
}

// Loss terms of one output (the final one or an auxiliary one), unweighted, and its matching.
struct OutputLoss {
  torch::Tensor ce, bbox, giou, cardinality;
  std::vector<DetrMatch> matches;
};

OutputLoss loss_of(const DetrPredictions& out, const std::vector<DetrTarget>& targets, const DetrLossOptions& options,
                   double num_boxes, const torch::Tensor& class_weight) {
  const torch::Tensor logits = out.logits.to(torch::kFloat);
  const torch::Tensor boxes = out.pred_boxes.to(torch::kFloat);
  const int64_t n = logits.size(0), q = logits.size(1), c = logits.size(2);
  const torch::Device device = logits.device();
  OutputLoss r;
  r.matches = hungarian_match({logits, boxes}, targets, options.costs);
  auto [batch_idx, query_idx] = matched_queries(r.matches, device);

  // loss_labels: every query targets "no object" (index num_labels) except the matched ones.
  std::vector<torch::Tensor> matched_labels, matched_boxes;
  for (size_t i = 0; i < targets.size(); ++i) {
    const torch::Tensor j = r.matches[i].target_indices.to(targets[i].labels.device());
    matched_labels.push_back(targets[i].labels.index_select(0, j));
    matched_boxes.push_back(targets[i].boxes.index_select(0, j.to(targets[i].boxes.device())).to(torch::kFloat));
  }
  torch::Tensor classes_o = torch::cat(matched_labels).to(device, torch::kLong);
  torch::Tensor target_classes = torch::full({n, q}, options.num_labels, torch::TensorOptions().dtype(torch::kLong).device(device));
  target_classes.index_put_({batch_idx, query_idx}, classes_o);
  namespace F = torch::nn::functional;
  r.ce = F::cross_entropy(logits.reshape({n * q, c}), target_classes.reshape({n * q}),
                          F::CrossEntropyFuncOptions().weight(class_weight));

  // loss_boxes: L1 and 1 - GIoU over matched pairs, normalised by the number of target boxes.
  torch::Tensor src = boxes.index({batch_idx, query_idx});
  torch::Tensor tgt = torch::cat(matched_boxes).to(device);
  r.bbox = (src - tgt).abs().sum() / num_boxes;
  r.giou = (1 - generalized_box_iou_paired(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt))).sum() / num_boxes;

  // loss_cardinality (logged only): |#queries not predicting "no object" - #targets|, averaged over images.
  {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> lengths;
    for (const auto& t : targets) lengths.push_back(t.labels.size(0));
    torch::Tensor card_pred = (logits.argmax(-1) != c - 1).sum(1).to(torch::kFloat);
    torch::Tensor tgt_len = torch::tensor(lengths, torch::kLong).to(device, torch::kFloat);
    r.cardinality = (card_pred - tgt_len).abs().mean();
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------- boxes

torch::Tensor box_cxcywh_to_xyxy(const torch::Tensor& boxes) {
  auto b = boxes.unbind(-1);
  return torch::stack({b[0] - 0.5 * b[2], b[1] - 0.5 * b[3], b[0] + 0.5 * b[2], b[1] + 0.5 * b[3]}, -1);
}

torch::Tensor box_xyxy_to_cxcywh(const torch::Tensor& boxes) {
  auto b = boxes.unbind(-1);
  return torch::stack({(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]}, -1);
}

torch::Tensor box_area(const torch::Tensor& boxes) {
  return (boxes.select(-1, 2) - boxes.select(-1, 0)) * (boxes.select(-1, 3) - boxes.select(-1, 1));
}

std::pair<torch::Tensor, torch::Tensor> box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  torch::Tensor area1 = box_area(boxes1), area2 = box_area(boxes2);
  torch::Tensor lt = torch::max(boxes1.index({Slice(), torch::indexing::None, Slice(0, 2)}), boxes2.index({Slice(), Slice(0, 2)}));
  torch::Tensor rb = torch::min(boxes1.index({Slice(), torch::indexing::None, Slice(2, 4)}), boxes2.index({Slice(), Slice(2, 4)}));
  torch::Tensor wh = (rb - lt).clamp_min(0);  // [N, M, 2]
  torch::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
  torch::Tensor uni = area1.unsqueeze(1) + area2 - inter;
  return {inter / uni, uni};
}

torch::Tensor generalized_box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  require_xyxy(boxes1, "boxes1");
  require_xyxy(boxes2, "boxes2");
  auto [iou, uni] = box_iou(boxes1, boxes2);
  torch::Tensor lt = torch::min(boxes1.index({Slice(), torch::indexing::None, Slice(0, 2)}), boxes2.index({Slice(), Slice(0, 2)}));
  torch::Tensor rb = torch::max(boxes1.index({Slice(), torch::indexing::None, Slice(2, 4)}), boxes2.index({Slice(), Slice(2, 4)}));
  torch::Tensor wh = (rb - lt).clamp_min(0);
  torch::Tensor area = wh.select(2, 0) * wh.select(2, 1);  // of the smallest enclosing box
  return iou - (area - uni) / area;
}

torch::Tensor generalized_box_iou_paired(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  require_xyxy(boxes1, "boxes1");
  require_xyxy(boxes2, "boxes2");
  if (boxes1.size(0) != boxes2.size(0))
    fail("generalized_box_iou_paired: {} boxes paired with {}", boxes1.size(0), boxes2.size(0));
  // Element for element the formulas of generalized_box_iou, so the values equal its diagonal.
  torch::Tensor area1 = box_area(boxes1), area2 = box_area(boxes2);
  torch::Tensor lo = boxes1.index({Slice(), Slice(0, 2)}), hi = boxes1.index({Slice(), Slice(2, 4)});
  torch::Tensor lo2 = boxes2.index({Slice(), Slice(0, 2)}), hi2 = boxes2.index({Slice(), Slice(2, 4)});
  torch::Tensor wh = (torch::min(hi, hi2) - torch::max(lo, lo2)).clamp_min(0);
  torch::Tensor inter = wh.select(1, 0) * wh.select(1, 1);
  torch::Tensor uni = area1 + area2 - inter;
  torch::Tensor iou = inter / uni;
  torch::Tensor enclosing = (torch::max(hi, hi2) - torch::min(lo, lo2)).clamp_min(0);
  torch::Tensor area = enclosing.select(1, 0) * enclosing.select(1, 1);
  return iou - (area - uni) / area;
}

// ---------------------------------------------------------------- matching

torch::Tensor detr_match_cost(const torch::Tensor& logits, const torch::Tensor& pred_boxes, const DetrTarget& target,
                              const DetrMatchCosts& costs) {
  torch::NoGradGuard no_grad;
  // The original HungarianMatcher.forward, operation for operation (fp32), so that near-ties fall the same way.
  torch::Tensor prob = logits.to(torch::kFloat).softmax(-1);
  torch::Tensor boxes = pred_boxes.to(torch::kFloat);
  torch::Tensor tgt_ids = target.labels.to(logits.device(), torch::kLong);
  torch::Tensor tgt_boxes = target.boxes.to(logits.device(), torch::kFloat);
  torch::Tensor cost_class = -prob.index_select(1, tgt_ids);
  torch::Tensor cost_bbox = torch::cdist(boxes, tgt_boxes, 1);
  torch::Tensor cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tgt_boxes));
  return costs.bbox_cost * cost_bbox + costs.class_cost * cost_class + costs.giou_cost * cost_giou;
}

std::vector<DetrMatch> hungarian_match(const DetrPredictions& predictions, const std::vector<DetrTarget>& targets,
                                       const DetrMatchCosts& costs) {
  const torch::Tensor& logits = predictions.logits;
  const torch::Tensor& boxes = predictions.pred_boxes;
  if (logits.dim() != 3 || boxes.dim() != 3 || boxes.size(2) != 4 || logits.size(0) != boxes.size(0) ||
      logits.size(1) != boxes.size(1))
    fail("hungarian_match: expected logits [N, Q, C+1] and pred_boxes [N, Q, 4], got [{}] and [{}]",
         fmt::join(logits.sizes(), ", "), fmt::join(boxes.sizes(), ", "));
  if (static_cast<int64_t>(targets.size()) != logits.size(0))
    fail("hungarian_match: {} targets for a batch of {} images", targets.size(), logits.size(0));
  std::vector<DetrMatch> out;
  for (size_t i = 0; i < targets.size(); ++i) {
    const int64_t num_targets = targets[i].labels.defined() ? targets[i].labels.numel() : 0;
    DetrMatch m;
    if (num_targets == 0) {
      m.query_indices = torch::empty({0}, torch::kLong);
      m.target_indices = torch::empty({0}, torch::kLong);
    } else {
      torch::Tensor c = detr_match_cost(logits[i], boxes[i], targets[i], costs).to(torch::kCPU, torch::kDouble).contiguous();
      Assignment a = linear_sum_assignment(c.data_ptr<double>(), c.size(0), c.size(1));
      m.query_indices = torch::tensor(a.rows, torch::kLong);
      m.target_indices = torch::tensor(a.cols, torch::kLong);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// ---------------------------------------------------------------- loss

DetrLossOptions DetrLossOptions::from_config(const DetrConfig& config) {
  DetrLossOptions o;
  o.num_labels = config.num_labels();
  o.costs = {config.class_cost, config.bbox_cost, config.giou_cost};
  o.bbox_loss_coefficient = config.bbox_loss_coefficient;
  o.giou_loss_coefficient = config.giou_loss_coefficient;
  o.eos_coefficient = config.eos_coefficient;
  return o;
}

DetrLoss detr_loss(const DetrOutput& output, const std::vector<DetrTarget>& targets, const DetrLossOptions& options) {
  if (!output.logits.defined() || output.logits.dim() != 3 || output.logits.size(2) != options.num_labels + 1)
    fail("detr loss: logits must be [N, Q, num_labels + 1 = {}], got [{}]", options.num_labels + 1,
         output.logits.defined() ? fmt::format("{}", fmt::join(output.logits.sizes(), ", ")) : "undefined");
  if (static_cast<int64_t>(targets.size()) != output.logits.size(0))
    fail("detr loss: {} targets for a batch of {} images", targets.size(), output.logits.size(0));
  int64_t total_boxes = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    check_target(targets[i], i, options.num_labels);
    total_boxes += targets[i].labels.size(0);
  }
  // The original averages over the boxes of all processes (their mean per process), at least 1.
  double num_boxes = static_cast<double>(total_boxes);
  if (options.mean_boxes_over_ranks) num_boxes = options.mean_boxes_over_ranks(num_boxes);
  num_boxes = std::max(num_boxes, 1.0);
  torch::Tensor class_weight =
      torch::ones({options.num_labels + 1}, torch::TensorOptions().dtype(torch::kFloat).device(output.logits.device()));
  class_weight[options.num_labels] = options.eos_coefficient;

  DetrLoss loss;
  auto add = [&](const OutputLoss& r, const std::string& suffix) {
    torch::Tensor weighted = r.ce + options.bbox_loss_coefficient * r.bbox + options.giou_loss_coefficient * r.giou;
    loss.total = loss.total.defined() ? loss.total + weighted : weighted;
    loss.terms["loss_ce" + suffix] = r.ce.detach();
    loss.terms["loss_bbox" + suffix] = r.bbox.detach();
    loss.terms["loss_giou" + suffix] = r.giou.detach();
    loss.terms["cardinality_error" + suffix] = r.cardinality.detach();
  };
  OutputLoss final_loss = loss_of(output, targets, options, num_boxes, class_weight);
  add(final_loss, "");
  loss.matches = std::move(final_loss.matches);
  for (size_t i = 0; i < output.auxiliary_outputs.size(); ++i)
    add(loss_of(output.auxiliary_outputs[i], targets, options, num_boxes, class_weight), fmt::format("_{}", i));
  return loss;
}

// ---------------------------------------------------------------- post-processing

std::vector<DetrDetections> post_process_object_detection(const torch::Tensor& logits, const torch::Tensor& pred_boxes,
                                                          double threshold,
                                                          const std::vector<std::array<double, 2>>& target_sizes) {
  if (logits.dim() != 3 || pred_boxes.dim() != 3 || pred_boxes.size(2) != 4 || logits.size(0) != pred_boxes.size(0) ||
      logits.size(1) != pred_boxes.size(1) || logits.size(2) < 2)
    fail("post_process_object_detection: expected logits [N, Q, C+1] and pred_boxes [N, Q, 4], got [{}] and [{}]",
         fmt::join(logits.sizes(), ", "), fmt::join(pred_boxes.sizes(), ", "));
  if (!target_sizes.empty() && static_cast<int64_t>(target_sizes.size()) != logits.size(0))
    fail("post_process_object_detection: {} target sizes for a batch of {} images (pass one (height, width) per "
         "image)",
         target_sizes.size(), logits.size(0));
  torch::NoGradGuard no_grad;
  torch::Tensor prob = logits.detach().to(torch::kCPU, torch::kFloat).softmax(-1);
  auto [scores, labels] = prob.slice(2, 0, prob.size(2) - 1).max(-1);
  torch::Tensor boxes = box_cxcywh_to_xyxy(pred_boxes.detach().to(torch::kCPU, torch::kFloat));
  if (!target_sizes.empty()) {
    std::vector<float> scale;
    for (const auto& [h, w] : target_sizes) scale.insert(scale.end(), {static_cast<float>(w), static_cast<float>(h),
                                                                      static_cast<float>(w), static_cast<float>(h)});
    boxes = boxes * torch::tensor(scale).view({-1, 1, 4});
  }
  std::vector<DetrDetections> out;
  for (int64_t i = 0; i < logits.size(0); ++i) {
    torch::Tensor keep = scores[i] > threshold;
    out.push_back({scores[i].index({keep}), labels[i].index({keep}), boxes[i].index({keep})});
  }
  return out;
}

}  // namespace em::models
