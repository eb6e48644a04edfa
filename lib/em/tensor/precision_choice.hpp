// Which precision a prediction runs in (em-predict, em-serve, em-eval): --precision auto|fp32|bf16, with --bf16 the
// same as --precision bf16; auto takes bf16 only where it was measured faster than fp32 and within tolerance.
#pragma once
#include <string>

#include <torch/torch.h>

#include "em/core/algo.hpp"
#include "em/core/cpu_features.hpp"
#include "em/tensor/autocast.hpp"

namespace em::tensor {

enum class PrecisionMode { automatic, fp32, bf16 };

// The mode of --precision TEXT ("" = not given = auto) and --bf16. em::UsageError for another word, and for --bf16
// with --precision auto or fp32 (--bf16 is --precision bf16: the two disagree).
PrecisionMode precision_mode_of_flags(const std::string& precision, bool bf16);

// Whether bf16 autocast was measured faster than fp32 (and within docs/devices.md's tolerances) for `algo`'s model on
// a CPU with AMX-BF16, and the measurement behind the answer (docs/benchmarks.md).
struct AmxMeasurement {
  Algo algo;
  bool bf16_faster;
  const char* evidence;
};
const AmxMeasurement& amx_measurement(Algo algo);

struct PrecisionChoice {
  Precision precision = Precision::fp32;
  std::string reason;  // "asked" (--precision fp32|bf16, --bf16), or "auto: ..." with why

  // "bf16 (auto: AMX present, measured faster for classification)": what the tools log at start.
  std::string describe() const;
};

// The precision a prediction of `algo` runs in on `device`. fp32 and bf16 are taken as asked (check_precision's rule
// applies where the model runs). auto: on the CPU bf16 when `cpu` has AMX-BF16 and amx_measurement(algo) says bf16
// was faster, else fp32; on CUDA fp32 (bf16 only when asked).
PrecisionChoice choose_inference_precision(PrecisionMode mode, Algo algo, const torch::Device& device,
                                           const CpuFeatures& cpu);

}  // namespace em::tensor
