// --precision auto|fp32|bf16 with --bf16: the flags' mode (conflicts are usage errors) and auto's choice by device,
// CPU features and algorithm (bf16 only on AMX, only where measured faster).
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/tensor/precision_choice.hpp"

using em::Algo;
using em::tensor::Precision;
using em::tensor::PrecisionMode;
using em::tensor::choose_inference_precision;
using em::tensor::precision_mode_of_flags;

namespace {
em::CpuFeatures amx_cpu() {
  return em::cpu_features_from_cpuinfo("flags : avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n");
}
em::CpuFeatures epyc_cpu() { return em::cpu_features_from_cpuinfo("flags : avx512f avx512_bf16\n"); }
}  // namespace

TEST_CASE("precision flags: auto by default, the word given, --bf16 as --precision bf16", "[tensor][precision]") {
  CHECK(precision_mode_of_flags("", false) == PrecisionMode::automatic);
  CHECK(precision_mode_of_flags("auto", false) == PrecisionMode::automatic);
  CHECK(precision_mode_of_flags("fp32", false) == PrecisionMode::fp32);
  CHECK(precision_mode_of_flags("bf16", false) == PrecisionMode::bf16);
  CHECK(precision_mode_of_flags("", true) == PrecisionMode::bf16);
  CHECK(precision_mode_of_flags("bf16", true) == PrecisionMode::bf16);
}

TEST_CASE("precision flags: --bf16 with --precision fp32 or auto, and unknown words, are usage errors",
          "[tensor][precision]") {
  CHECK_THROWS_AS(precision_mode_of_flags("fp32", true), em::UsageError);
  CHECK_THROWS_WITH(precision_mode_of_flags("fp32", true), Catch::Contains("--bf16 and --precision fp32"));
  CHECK_THROWS_AS(precision_mode_of_flags("auto", true), em::UsageError);
  CHECK_THROWS_AS(precision_mode_of_flags("fp16", false), em::UsageError);
  CHECK_THROWS_WITH(precision_mode_of_flags("half", false),
                    Catch::Contains("--precision half: choose auto, fp32 or bf16"));
}

TEST_CASE("auto on a CPU with AMX: bf16 exactly for the algorithms measured faster", "[tensor][precision]") {
  for (Algo algo : {Algo::classification, Algo::segmentation, Algo::detection}) {
    const auto c = choose_inference_precision(PrecisionMode::automatic, algo, torch::kCPU, amx_cpu());
    CHECK(c.precision ==
          (em::tensor::amx_measurement(algo).bf16_faster ? Precision::bf16 : Precision::fp32));
  }
  // The measurements of docs/benchmarks.md: ResNet-50 faster; SegFormer and DETR not measured against fp32 there.
  CHECK(em::tensor::amx_measurement(Algo::classification).bf16_faster);
  CHECK_FALSE(em::tensor::amx_measurement(Algo::segmentation).bf16_faster);
  CHECK_FALSE(em::tensor::amx_measurement(Algo::detection).bf16_faster);
  CHECK(choose_inference_precision(PrecisionMode::automatic, Algo::classification, torch::kCPU, amx_cpu()).describe() ==
        "bf16 (auto: AMX present, measured faster for classification)");
  CHECK(choose_inference_precision(PrecisionMode::automatic, Algo::segmentation, torch::kCPU, amx_cpu()).describe() ==
        "fp32 (auto: AMX present, bf16 not measured faster for segmentation)");
}

TEST_CASE("auto without AMX is fp32 for every algorithm, AVX-512-BF16 or not", "[tensor][precision]") {
  for (Algo algo : {Algo::classification, Algo::segmentation, Algo::detection}) {
    const auto epyc = choose_inference_precision(PrecisionMode::automatic, algo, torch::kCPU, epyc_cpu());
    CHECK(epyc.precision == Precision::fp32);
    CHECK_THAT(epyc.describe(), Catch::StartsWith("fp32 (auto: no AMX-BF16 on this CPU (AVX-512-BF16 only)"));
    const auto none = choose_inference_precision(PrecisionMode::automatic, algo, torch::kCPU, em::CpuFeatures{});
    CHECK(none.precision == Precision::fp32);
  }
}

TEST_CASE("auto on CUDA keeps fp32; fp32 and bf16 asked are taken on any CPU", "[tensor][precision]") {
  const torch::Device cuda(torch::kCUDA, 0);  // a Device value only: nothing runs on it
  CHECK(choose_inference_precision(PrecisionMode::automatic, Algo::classification, cuda, amx_cpu()).precision ==
        Precision::fp32);
  CHECK(choose_inference_precision(PrecisionMode::bf16, Algo::classification, cuda, {}).precision == Precision::bf16);
  CHECK(choose_inference_precision(PrecisionMode::fp32, Algo::classification, torch::kCPU, amx_cpu()).precision ==
        Precision::fp32);
  const auto asked = choose_inference_precision(PrecisionMode::bf16, Algo::segmentation, torch::kCPU, {});
  CHECK(asked.precision == Precision::bf16);
  CHECK(asked.describe() == "bf16 (asked)");
}
