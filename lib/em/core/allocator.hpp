// glibc malloc settings for the tools that run models. By default glibc serves a block above its mmap threshold
// (128 KiB, raised as such blocks are freed, up to 32 MiB) with a fresh mmap and gives freed memory at the top of the
// heap back to the kernel above 128 KiB: a forward pass whose activations are tens of MB then maps, faults in page by
// page and unmaps the same memory on every batch — measured as a large share of SegFormer's time on a 2-vCPU VM
// (docs/benchmarks.md). keep_freed_memory() keeps it instead, as PyTorch's own CUDA allocator does on a GPU.
#pragma once

namespace em::core {

// Sets glibc's mmap threshold to its maximum (32 MiB), the trim threshold to 1 GiB and the top pad to 64 MiB, unless
// the environment sets any MALLOC_*_ tunable (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_,
// MALLOC_MMAP_MAX_) or GLIBC_TUNABLES, which then rule as glibc reads them. Returns whether it set them. A no-op
// (false) on C libraries other than glibc.
bool keep_freed_memory();

}  // namespace em::core
