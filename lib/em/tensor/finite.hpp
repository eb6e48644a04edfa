// The last line of defence against NaN answers: a model whose weights or preprocessing are broken computes NaN or
// inf; emkit then fails with a message instead of printing "score": NaN (or silently no detection) with exit 0.
#pragma once
#include <string>

#include <torch/types.h>

namespace em::tensor {

// Throws em::Error("<what>: the model computed non-finite values (NaN or inf) ...") unless every value is finite.
void require_finite(const torch::Tensor& t, const std::string& what);

}  // namespace em::tensor
