// SyncBatchNorm for data-parallel training: BatchNorm2d whose training statistics cover the global batch of all
// ranks, through an all-reduce passed in as a callable (c10d's in the trainer, a fake in tests).
#pragma once
#include <functional>

#include <torch/nn/modules/batchnorm.h>

namespace em::dist {

// Sums `t` element-wise over all ranks, in place (blocking). Must be called in the same order on every rank.
using AllReduceSum = std::function<void(torch::Tensor&)>;

// Training-mode BatchNorm of x [N, C, H, W] (NCHW or channels-last; fp32, or bf16 under autocast) over the global
// batch: `bn`'s weight/bias (undefined when affine=false) and eps; its running_mean, running_var (unbiased over the
// global count) and num_batches_tracked updated as torch's BatchNorm2d does in training. The output has x's dtype;
// statistics are computed in fp64.
// Forward: one all_reduce_sum of [sum, sum of squares, count] per channel. Backward: one all_reduce_sum of
// [sum(dy), sum(dy * (x - mean))]; grad_input is over the global batch, grad_weight / grad_bias come from the local
// sums (the trainer averages parameter gradients over ranks afterwards, as PyTorch's SyncBatchNorm + DDP do).
// Local batch sizes may differ between ranks, and may be 0; the global count per channel must exceed 1.
torch::Tensor sync_batch_norm(const torch::Tensor& x, torch::nn::BatchNorm2dImpl& bn,
                              const AllReduceSum& all_reduce_sum);

// The process-wide all-reduce for the models' BatchNorm2d layers: set by the trainer when --sync_batchnorm is on,
// before training starts, and cleared after. A plain global, not guarded: set and clear it only while no model runs.
void set_sync_batchnorm(AllReduceSum fn);
void clear_sync_batchnorm();

// What the models call for a BatchNorm2d: sync_batch_norm with the process-wide all-reduce when one is set and `bn`
// is training, otherwise bn.forward(x) (so evaluation and single-process training are untouched).
torch::Tensor batch_norm_2d(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

}  // namespace em::dist
