// The torch-tensor entry to the segmentation metrics (what em-eval/em-train call with argmax maps).
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/tensor/segmentation_counts.hpp"

using em::metrics::SegmentationAccumulator;

TEST_CASE("label-map tensors of mixed integer types give evaluate's docstring mean IoU", "[metrics]") {
  // HF evaluate mean_iou docstring example; predictions as int64 (argmax), truths as uint8 (decoded PNGs).
  SegmentationAccumulator acc(10);
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8);
  em::tensor::add_label_maps(acc, torch::tensor({1, 2, 3, 4, 5, 255}).view({3, 2}),
                              torch::tensor({0, 3, 5, 4, 6, 255}, u8).view({3, 2}));
  em::tensor::add_label_maps(acc, torch::tensor({2, 7, 9, 2, 3, 6}).view({1, 3, 2}),
                              torch::tensor({1, 7, 9, 2, 3, 6}, u8).view({1, 3, 2}));
  em::tensor::add_label_maps(acc, torch::tensor({2, 2, 3, 8, 2, 4, 3, 255, 2}).view({3, 3}).t(),
                              torch::tensor({1, 2, 2, 8, 2, 1, 3, 255, 1}, u8).view({3, 3}).t());  // strided
  auto m = acc.compute();
  CHECK(m.mean_iou == 0.47750000000000004);
  CHECK(m.mean_accuracy == 0.5916666666666666);
  CHECK(m.overall_accuracy == 0.5263157894736842);
}

TEST_CASE("label-map tensors must be integer and of one shape", "[metrics]") {
  SegmentationAccumulator acc(3);
  CHECK_THROWS_WITH(em::tensor::add_label_maps(acc, torch::zeros({2, 2}), torch::zeros({2, 2}, torch::kLong)),
                    Catch::Contains("argmax"));
  CHECK_THROWS_WITH(
      em::tensor::add_label_maps(acc, torch::zeros({2, 3}, torch::kLong), torch::zeros({3, 2}, torch::kLong)),
      Catch::Contains("shape"));
}
