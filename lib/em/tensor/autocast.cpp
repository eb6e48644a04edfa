#include "em/tensor/autocast.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "em/core/error.hpp"

// LibTorch 2.4 replaced the per-backend calls (set_enabled = CUDA, set_cpu_enabled, ...) by calls taking the
// device type; the old names are deprecated there.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define EM_AUTOCAST_PER_DEVICE_TYPE 1
#else
#define EM_AUTOCAST_PER_DEVICE_TYPE 0
#endif

namespace em::tensor {
namespace {

bool is_enabled(c10::DeviceType type) {
#if EM_AUTOCAST_PER_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_enabled(c10::DeviceType type, bool enabled) {
#if EM_AUTOCAST_PER_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

at::ScalarType get_dtype(c10::DeviceType type) {
#if EM_AUTOCAST_PER_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_dtype(c10::DeviceType type, at::ScalarType dtype) {
#if EM_AUTOCAST_PER_DEVICE_TYPE
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == c10::DeviceType::CUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
    case Precision::fp32: break;
  }
  return "fp32";
}

Precision precision_of_flags(bool bf16, bool fp16) {
  if (bf16 && fp16) usage_fail("--bf16 and --fp16: choose one lower precision");
  return bf16 ? Precision::bf16 : fp16 ? Precision::fp16 : Precision::fp32;
}

void check_precision(Precision precision, const torch::Device& device) {
  if (precision == Precision::fp32) return;
  if (!device.is_cpu() && !device.is_cuda())
    usage_fail("--{}: autocast runs on the CPU or CUDA, not on {}", precision_name(precision), device.str());
  if (precision == Precision::fp16 && !device.is_cuda())
    usage_fail("--fp16: fp16 autocast needs a CUDA device (--device cuda), the model runs on {}; use --bf16 on the "
               "CPU",
               device.str());
}

Autocast::Autocast(Precision precision, const torch::Device& device)
    : enabled_(precision != Precision::fp32), type_(device.type()) {
  if (!enabled_) return;
  check_precision(precision, device);
  previous_enabled_ = is_enabled(type_);
  previous_dtype_ = get_dtype(type_);
  set_dtype(type_, precision == Precision::fp16 ? at::kHalf : at::kBFloat16);
  set_enabled(type_, true);
  at::autocast::increment_nesting();
}

Autocast::~Autocast() {
  if (!enabled_) return;
  set_enabled(type_, previous_enabled_);
  set_dtype(type_, previous_dtype_);
  // As torch.autocast's __exit__: the weights cast for this pass are dropped when the outermost scope ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace em::tensor
