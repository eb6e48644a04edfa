#include "em/tensor/device.hpp"

#include <ATen/Context.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdlib>
#include <functional>

#include "em/core/error.hpp"

namespace em::tensor {
namespace {

// A whole number >= 0 written in decimal digits only ("3", not "+3", " 3" or "3x"); -1 otherwise.
int parse_index(const std::string& text) {
  if (text.empty() || text.size() > 6) return -1;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

// Why no CUDA device can be used, for the message of --device cuda on such a machine.
std::string why_no_cuda() {
  if (!at::hasCUDA())
    return "this LibTorch has no CUDA (Debian's libtorch is CPU-only; build against PyTorch's CUDA LibTorch, "
           "scripts/device_check.sh)";
  return "no CUDA device is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them all)";
}

// Apply `fn` to every tensor field of the batch (undefined tensors are passed through untouched).
Batch map_tensors(const Batch& in, const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  auto apply = [&](const torch::Tensor& t) { return t.defined() ? fn(t) : t; };
  Batch out = in;
  out.pixel_values = apply(in.pixel_values);
  out.pixel_mask = apply(in.pixel_mask);
  out.labels = apply(in.labels);
  for (auto& target : out.boxes) {
    target.labels = apply(target.labels);
    target.boxes = apply(target.boxes);
  }
  for (auto& map : out.label_maps) map = apply(map);
  return out;
}

}  // namespace

torch::Device resolve_device(const std::string& spec, int local_rank) {
  if (spec == "cpu") return torch::kCPU;
  int index = -1;  // -1 = the local rank's device, or 0
  if (spec == "auto") {
    if (!torch::cuda::is_available()) return torch::kCPU;
  } else if (spec.rfind("cuda:", 0) == 0) {
    index = parse_index(spec.substr(5));
    if (index < 0) usage_fail("--device {}: expected auto, cpu, cuda or cuda:N with N a device number (cuda:0)", spec);
  } else if (spec != "cuda") {
    usage_fail("--device {}: expected auto, cpu, cuda or cuda:N (auto = CUDA when present, else the CPU)", spec);
  }
  if (!torch::cuda::is_available()) usage_fail("--device {}: {}; use --device cpu (or auto)", spec, why_no_cuda());
  const int count = static_cast<int>(torch::cuda::device_count());
  std::string picked_by = "--device " + spec;
  if (index < 0) {
    index = local_rank >= 0 ? local_rank : 0;
    if (local_rank >= 0) picked_by = "LOCAL_RANK=" + std::to_string(local_rank) + " with --device " + spec;
  }
  if (index >= count)
    usage_fail("{} picks cuda:{}, but {} CUDA device{} visible (cuda:0..cuda:{})", picked_by, index, count,
               count == 1 ? " is" : "s are", count - 1);
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  // The CUDA device guard of LibTorch's registry (registered by libtorch_cuda): no CUDA header or library is
  // needed here, so this file builds the same against a CPU-only LibTorch.
  c10::impl::getDeviceGuardImpl(torch::kCUDA)->setDevice(device);
  return device;
}

int local_rank_from_env() {
  const char* value = std::getenv("LOCAL_RANK");
  if (value == nullptr || *value == '\0') return -1;
  const int rank = parse_index(value);
  if (rank < 0) usage_fail("LOCAL_RANK={}: expected a whole number >= 0 (the launcher sets it per process)", value);
  return rank;
}

torch::Device device_of(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return torch::kCPU;
}

Batch to_device(const Batch& batch, const torch::Device& device, bool non_blocking) {
  const bool async = non_blocking && !device.is_cpu();
  return map_tensors(batch, [&](const torch::Tensor& t) { return t.to(device, async); });
}

bool pin_memory_available(const torch::Device& target) { return target.is_cuda() && torch::cuda::is_available(); }

Batch pin_memory(Batch batch) {
  return map_tensors(batch, [](const torch::Tensor& t) { return t.is_cpu() && !t.is_pinned() ? t.pin_memory() : t; });
}

}  // namespace em::tensor
