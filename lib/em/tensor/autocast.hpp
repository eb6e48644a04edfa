// Mixed precision for a scope, on the device the model runs on (CPU or CUDA), across LibTorch 1.13 and 2.x (whose
// autocast API moved to per-device calls in 2.4). bf16: matmuls and convolutions in bf16 (AMX/AVX-512 on a CPU,
// tensor cores on a GPU) while reductions stay fp32. fp16: the same in fp16, CUDA only, trained with a GradScaler
// (train/grad_scaler.hpp) because fp16's small range underflows gradients.
#pragma once
#include <string>

#include <torch/torch.h>

namespace em::tensor {

enum class Precision { fp32, bf16, fp16 };

// "fp32", "bf16", "fp16".
const char* precision_name(Precision precision);
// The precision of the --bf16 / --fp16 flags; both is a usage error naming them.
Precision precision_of_flags(bool bf16, bool fp16);
// Throws em::UsageError when `precision` cannot run on `device` (fp16 on the CPU: its CPU kernels are slow or
// missing; bf16 is the CPU's lower precision).
void check_precision(Precision precision, const torch::Device& device);

// Autocast of `device`'s type to `precision` while it lives (fp32: nothing changes). Restores the previous state
// (enabled flag and dtype) when it ends; nested scopes work, and the cast cache is cleared when the outermost ends.
// check_precision's rule applies (em::UsageError).
class Autocast {
 public:
  Autocast(Precision precision, const torch::Device& device);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool enabled_;
  c10::DeviceType type_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// bf16 autocast or none: the --bf16 flag's scope, on the CPU unless told another device.
class Bf16Autocast : public Autocast {
 public:
  explicit Bf16Autocast(bool enabled, const torch::Device& device = torch::kCPU)
      : Autocast(enabled ? Precision::bf16 : Precision::fp32, device) {}
};

}  // namespace em::tensor
