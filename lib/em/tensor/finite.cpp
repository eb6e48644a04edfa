#include "em/tensor/finite.hpp"

#include "em/core/error.hpp"

namespace em::tensor {

void require_finite(const torch::Tensor& t, const std::string& what) {
  if (!t.is_floating_point() || t.numel() == 0) return;
  if (torch::isfinite(t).all().item<bool>()) return;
  fail("{}: the model computed non-finite values (NaN or inf): its weights (model.safetensors) or its "
       "normalisation (preprocessor_config.json) are broken",
       what);
}

}  // namespace em::tensor
