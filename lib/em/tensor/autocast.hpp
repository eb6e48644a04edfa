// bf16 autocast on CPU for a scope, across LibTorch 1.13 and 2.x (whose autocast API moved to per-device calls).
// With it, matmuls and convolutions run in bf16 (AMX/AVX-512 on this CPU) while reductions stay fp32.
#pragma once

namespace em::tensor {

class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool enabled);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace em::tensor
