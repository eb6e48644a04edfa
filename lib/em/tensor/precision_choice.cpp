#include "em/tensor/precision_choice.hpp"

#include <fmt/format.h>

#include "em/core/error.hpp"

namespace em::tensor {
namespace {

// One row per algorithm: bf16 against fp32 for prediction on an AMX-BF16 CPU (docs/benchmarks.md, "bf16 or fp32").
// A row turns true only with a measurement on such a CPU that shows bf16 faster and its outputs within tolerance.
constexpr AmxMeasurement kAmxMeasurements[] = {
    {Algo::classification, true,
     "ResNet-50 with channels-last + bf16 autocast measured up to ~4x faster than fp32 on an AMX CPU"},
    {Algo::segmentation, false,
     "SegFormer bf16 not measured against fp32 on an AMX CPU (issue 14 found its bf16 inference at 0.64x of HF's "
     "own bf16 speed there), so fp32"},
    {Algo::detection, false, "DETR not yet measured on an AMX CPU, so fp32"},
};
static_assert(one_row_per_algo(kAmxMeasurements), "kAmxMeasurements: one row per algorithm, in enum order");

}  // namespace

PrecisionMode precision_mode_of_flags(const std::string& precision, bool bf16) {
  PrecisionMode mode = PrecisionMode::automatic;
  if (precision == "fp32") {
    mode = PrecisionMode::fp32;
  } else if (precision == "bf16") {
    mode = PrecisionMode::bf16;
  } else if (!precision.empty() && precision != "auto") {
    usage_fail("--precision {}: choose auto, fp32 or bf16", precision);
  }
  if (bf16 && !precision.empty() && mode != PrecisionMode::bf16)
    usage_fail("--bf16 and --precision {}: --bf16 is --precision bf16; give one of them", precision);
  return bf16 ? PrecisionMode::bf16 : mode;
}

const AmxMeasurement& amx_measurement(Algo algo) { return kAmxMeasurements[index_of(algo)]; }

std::string PrecisionChoice::describe() const {
  return reason.empty() ? precision_name(precision) : fmt::format("{} ({})", precision_name(precision), reason);
}

PrecisionChoice choose_inference_precision(PrecisionMode mode, Algo algo, const torch::Device& device,
                                           const CpuFeatures& cpu) {
  if (mode == PrecisionMode::fp32) return {Precision::fp32, "asked"};
  if (mode == PrecisionMode::bf16) {
    check_precision(Precision::bf16, device);
    return {Precision::bf16, "asked"};
  }
  if (device.is_cuda()) return {Precision::fp32, "auto: fp32 on CUDA unless --precision bf16"};
  if (!device.is_cpu()) return {Precision::fp32, fmt::format("auto: fp32 on {}", device.str())};
  const std::string name = algo_name(algo);
  if (!cpu.amx())
    return {Precision::fp32,
            fmt::format("auto: no AMX-BF16 on this CPU{}, bf16 is the default only with AMX",
                        cpu.avx512_bf16 ? " (AVX-512-BF16 only)" : "")};
  const AmxMeasurement& m = amx_measurement(algo);
  if (!m.bf16_faster)
    return {Precision::fp32, fmt::format("auto: AMX present, bf16 not measured faster for {}", name)};
  return {Precision::bf16, fmt::format("auto: AMX present, measured faster for {}", name)};
}

}  // namespace em::tensor
