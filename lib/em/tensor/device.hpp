// Where tensors and modules live: the --device flag ("auto", "cpu", "cuda", "cuda:N") resolved once per process,
// and batches moved there, pinned first when the target is CUDA. Every function also runs on a CPU-only LibTorch.
#pragma once
#include <string>

#include <torch/torch.h>

#include "em/tensor/batch.hpp"

namespace em::tensor {

// The device --device names. "auto" = CUDA when a CUDA device is visible, else the CPU; "cuda" = cuda:local_rank
// under a launcher (local_rank >= 0), else cuda:0; "cuda:N" = that device. A CUDA device is also made the current
// one (where LibTorch allocates by default). Throws em::UsageError (exit 2) naming the flag when the spec is none
// of these, when this LibTorch has no CUDA or no device is visible, or when N (or local_rank) is out of range.
torch::Device resolve_device(const std::string& spec, int local_rank = -1);

// LOCAL_RANK from the environment (set by torchrun and other launchers): its value, or -1 when unset or empty.
// Throws em::UsageError when it is not a whole number >= 0.
int local_rank_from_env();

// The device of a module's first parameter (or buffer); the CPU for a module with neither.
torch::Device device_of(const torch::nn::Module& module);

// Every tensor of the batch (pixel_values, pixel_mask, labels, each box target's labels and boxes, each label map)
// on `device`. A tensor already there is shared, not copied (so on the CPU this is the identity). non_blocking
// applies to host -> device copies only (asynchronous from pinned memory); copies back to the CPU always wait.
Batch to_device(const Batch& batch, const torch::Device& device, bool non_blocking = true);

// Whether batches bound for `target` should be pinned: it is a CUDA device (page-locked host memory lets the
// host -> GPU copy run asynchronously). False on the CPU and on a LibTorch without CUDA.
bool pin_memory_available(const torch::Device& target);

// The batch with every defined CPU tensor in page-locked host memory (tensors pinned already are shared).
// Only where pin_memory_available(): a LibTorch without CUDA cannot pin.
Batch pin_memory(Batch batch);

}  // namespace em::tensor
