// Autocast scopes: bf16 on the CPU, bf16/fp16 on CUDA ([cuda]: EM_TEST_DEVICE=cuda), the state restored after,
// nesting, and fp16 refused where it cannot run.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/tensor/autocast.hpp"
#include "unit/tensor/device_test_support.hpp"

using em::tensor::Autocast;
using em::tensor::Precision;

namespace {
// The dtype a matmul gives on `device` in the current autocast state.
torch::ScalarType matmul_dtype(const torch::Device& device) {
  const auto a = torch::ones({4, 4}, torch::TensorOptions().device(device));
  return torch::mm(a, a).scalar_type();
}
}  // namespace

TEST_CASE("bf16 autocast on the CPU runs matmuls in bf16 and restores fp32 after, nested scopes too",
          "[tensor][autocast]") {
  REQUIRE(matmul_dtype(torch::kCPU) == torch::kFloat);
  {
    Autocast outer(Precision::bf16, torch::kCPU);
    CHECK(matmul_dtype(torch::kCPU) == torch::kBFloat16);
    {
      Autocast off(Precision::fp32, torch::kCPU);  // fp32 changes nothing: the outer scope still casts
      CHECK(matmul_dtype(torch::kCPU) == torch::kBFloat16);
      em::tensor::Bf16Autocast inner(true);
      CHECK(matmul_dtype(torch::kCPU) == torch::kBFloat16);
    }
    CHECK(matmul_dtype(torch::kCPU) == torch::kBFloat16);  // the inner scope's end restored "enabled"
  }
  CHECK(matmul_dtype(torch::kCPU) == torch::kFloat);
  {
    em::tensor::Bf16Autocast disabled(false);
    CHECK(matmul_dtype(torch::kCPU) == torch::kFloat);
  }
}

TEST_CASE("fp16 autocast on the CPU is a usage error naming --fp16; --bf16 with --fp16 too", "[tensor][autocast]") {
  CHECK_THROWS_AS(Autocast(Precision::fp16, torch::kCPU), em::UsageError);
  CHECK_THROWS_WITH(Autocast(Precision::fp16, torch::kCPU),
                    Catch::StartsWith("--fp16: ") && Catch::Contains("CUDA") && Catch::Contains("--bf16"));
  CHECK_NOTHROW(em::tensor::check_precision(Precision::bf16, torch::kCPU));
  CHECK_NOTHROW(em::tensor::check_precision(Precision::fp16, torch::Device(torch::kCUDA, 0)));
  CHECK(matmul_dtype(torch::kCPU) == torch::kFloat);  // the failed scope left nothing behind
  CHECK(em::tensor::precision_of_flags(false, false) == Precision::fp32);
  CHECK(em::tensor::precision_of_flags(true, false) == Precision::bf16);
  CHECK(em::tensor::precision_of_flags(false, true) == Precision::fp16);
  CHECK_THROWS_AS(em::tensor::precision_of_flags(true, true), em::UsageError);
  CHECK(std::string(em::tensor::precision_name(Precision::fp16)) == "fp16");
}

TEST_CASE("autocast on CUDA casts CUDA matmuls to bf16 or fp16 and leaves the CPU alone", "[tensor][autocast][cuda]") {
  const auto device = em::test::cuda_test_device();
  if (!device) return;
  for (Precision p : {Precision::bf16, Precision::fp16}) {
    INFO(em::tensor::precision_name(p));
    {
      Autocast autocast(p, *device);
      CHECK(matmul_dtype(*device) == (p == Precision::fp16 ? torch::kHalf : torch::kBFloat16));
      CHECK(matmul_dtype(torch::kCPU) == torch::kFloat);
    }
    CHECK(matmul_dtype(*device) == torch::kFloat);
  }
}
