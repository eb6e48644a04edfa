#include "em/tensor/segmentation_counts.hpp"

#include "em/core/error.hpp"

namespace em::tensor {

void add_label_maps(metrics::SegmentationAccumulator& accumulator, const torch::Tensor& pred, const torch::Tensor& truth) {
  if (pred.sizes() != truth.sizes())
    fail("segmentation metrics: prediction shape {} differs from the truth's {}", c10::str(pred.sizes()),
         c10::str(truth.sizes()));
  if (pred.is_floating_point() || truth.is_floating_point() || pred.is_complex() || truth.is_complex())
    fail("segmentation metrics: label maps must hold integer ids (got {} and {}); take argmax over the class axis",
         std::string(c10::toString(pred.scalar_type())), std::string(c10::toString(truth.scalar_type())));
  const torch::Tensor p = pred.to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor t = truth.to(torch::kCPU, torch::kLong).contiguous();
  accumulator.add(p.data_ptr<int64_t>(), t.data_ptr<int64_t>(), static_cast<std::size_t>(p.numel()));
}

}  // namespace em::tensor
