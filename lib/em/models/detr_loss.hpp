// DETR's training objective and its post-processing: box formats, generalized IoU, the Hungarian matcher, the
// set-prediction loss (the original SetCriterion) and HF's post_process_object_detection.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "em/models/detr.hpp"
#include "em/tensor/batch.hpp"

namespace em::models {

// ---------------------------------------------------------------- boxes (the original util/box_ops.py)

// (cx, cy, w, h) <-> (x0, y0, x1, y1) over the last dimension of size 4.
torch::Tensor box_cxcywh_to_xyxy(const torch::Tensor& boxes);
torch::Tensor box_xyxy_to_cxcywh(const torch::Tensor& boxes);
// Areas of xyxy boxes [N, 4] -> [N].
torch::Tensor box_area(const torch::Tensor& boxes);
// Pairwise IoU and union areas of xyxy boxes [N, 4] x [M, 4] -> ([N, M], [N, M]).
std::pair<torch::Tensor, torch::Tensor> box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2);
// Pairwise generalized IoU (Rezatofighi et al. 2019) of xyxy boxes -> [N, M] in [-1, 1]. Throws em::Error when a box
// has x1 < x0 or y1 < y0 (or NaN coordinates), as the original asserts.
torch::Tensor generalized_box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2);
// The same for pairs (boxes1[i], boxes2[i]) -> [N]: the diagonal of generalized_box_iou without the N x N matrix.
torch::Tensor generalized_box_iou_paired(const torch::Tensor& boxes1, const torch::Tensor& boxes2);

// ---------------------------------------------------------------- matching

// One image's targets: labels [M] int64 (0..num_labels-1), boxes [M, 4] float (cx, cy, w, h) relative to the
// frame pred_boxes live in (the padded input). The training batch's type (tensor/batch.hpp).
using DetrTarget = tensor::BoxTarget;

struct DetrMatchCosts {
  double class_cost = 1;
  double bbox_cost = 5;
  double giou_cost = 2;
};

// One image's matching: query_indices[k] predicts target_indices[k]; min(Q, M) pairs sorted by query (int64, CPU).
struct DetrMatch {
  torch::Tensor query_indices;
  torch::Tensor target_indices;
};

// The original HungarianMatcher's cost matrix of one image, [Q, M] fp32: bbox_cost * L1(cxcywh) - class_cost *
// softmax(logits)[target class] - giou_cost * GIoU(xyxy). logits [Q, C+1], pred_boxes [Q, 4].
torch::Tensor detr_match_cost(const torch::Tensor& logits, const torch::Tensor& pred_boxes, const DetrTarget& target,
                              const DetrMatchCosts& costs);
// Optimal one-to-one matching per image (exact solver, em::models::linear_sum_assignment), without gradients.
// predictions: logits [N, Q, C+1], pred_boxes [N, Q, 4]; targets.size() == N.
std::vector<DetrMatch> hungarian_match(const DetrPredictions& predictions, const std::vector<DetrTarget>& targets,
                                       const DetrMatchCosts& costs);

// ---------------------------------------------------------------- loss

struct DetrLossOptions {
  int64_t num_labels = 0;  // classes without "no object"; the logits have num_labels + 1 columns
  DetrMatchCosts costs;
  double bbox_loss_coefficient = 5;
  double giou_loss_coefficient = 2;
  double eos_coefficient = 0.1;  // cross-entropy weight of the "no object" class (others weigh 1)
  // Data-parallel training: the mean over processes of their batches' box counts (the original DETR's and HF's
  // all-reduce of num_boxes), which normalises the box losses; unset: this batch's count.
  std::function<double(double)> mean_boxes_over_ranks;

  static DetrLossOptions from_config(const DetrConfig& config);
};

struct DetrLoss {
  // loss_ce + bbox_loss_coefficient * loss_bbox + giou_loss_coefficient * loss_giou, summed over the final output and
  // every auxiliary output: the value to backpropagate (fp32 scalar).
  torch::Tensor total;
  // Detached fp32 scalars by HF's loss_dict names: loss_ce, loss_bbox, loss_giou, cardinality_error (logged only, not
  // in the total), and loss_ce_{i}, loss_bbox_{i}, loss_giou_{i}, cardinality_error_{i} for auxiliary output i.
  std::map<std::string, torch::Tensor> terms;
  std::vector<DetrMatch> matches;  // of the final output
};

// The original SetCriterion (losses labels, boxes, cardinality) with the HungarianMatcher, as HF's
// DetrForObjectDetection computes it from labels: each output is matched on its own; loss_ce is the cross-entropy
// over all queries (unmatched ones target "no object"), weighted mean with eos_coefficient on "no object";
// loss_bbox (L1 on cxcywh) and loss_giou (1 - GIoU) sum over matched pairs and divide by the number of target boxes
// in the batch (at least 1). Outputs may be bf16 (computed in fp32). Throws em::Error naming the image on malformed
// targets (label out of range, boxes not [M, 4]).
DetrLoss detr_loss(const DetrOutput& output, const std::vector<DetrTarget>& targets, const DetrLossOptions& options);

// ---------------------------------------------------------------- post-processing

// Detections of one image, in query order.
struct DetrDetections {
  torch::Tensor scores;  // [K] fp32
  torch::Tensor labels;  // [K] int64
  torch::Tensor boxes;   // [K, 4] fp32 (xmin, ymin, xmax, ymax)
};

// HF's DetrImageProcessor.post_process_object_detection: softmax over the classes, drop "no object", best class per
// query, keep score > threshold, boxes to xyxy scaled by target_sizes[i] = (height, width) of image i (pass the
// original image size when pred_boxes are relative to it; empty: boxes stay relative). CPU fp32 results.
std::vector<DetrDetections> post_process_object_detection(const torch::Tensor& logits, const torch::Tensor& pred_boxes,
                                                          double threshold,
                                                          const std::vector<std::array<double, 2>>& target_sizes = {});

}  // namespace em::models
