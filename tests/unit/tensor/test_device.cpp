// --device resolution, batches moved to a device and pinned, the device of a module. The CUDA cases ([cuda]) run
// with EM_TEST_DEVICE=cuda on a GPU machine (scripts/device_check.sh).
#include <catch2/catch.hpp>

#include <cstdlib>

#include "em/core/error.hpp"
#include "em/tensor/device.hpp"
#include "em/tensor/loader.hpp"
#include "unit/tensor/device_test_support.hpp"

using em::tensor::Batch;
using em::tensor::resolve_device;

namespace {

// A batch with every tensor field set, as the three algorithms' loaders fill them.
Batch full_batch() {
  Batch b;
  b.pixel_values = torch::rand({2, 3, 8, 8});
  b.pixel_mask = torch::ones({2, 8, 8}, torch::kInt64);
  b.labels = torch::tensor({1, 0}, torch::kInt64);
  b.boxes = {{torch::tensor({0}, torch::kInt64), torch::rand({1, 4})},
             {torch::tensor({1, 1}, torch::kInt64), torch::rand({2, 4})}};
  b.label_maps = {torch::zeros({5, 6}, torch::kInt64), torch::ones({7, 4}, torch::kInt64)};
  b.indices = {4, 9};
  b.skipped = 1;
  return b;
}

// Every tensor of the batch, in a fixed order.
std::vector<torch::Tensor> tensors_of(const Batch& b) {
  std::vector<torch::Tensor> all{b.pixel_values, b.pixel_mask, b.labels};
  for (const auto& t : b.boxes) {
    all.push_back(t.labels);
    all.push_back(t.boxes);
  }
  for (const auto& m : b.label_maps) all.push_back(m);
  return all;
}

// Sets an environment variable for one scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("resolve_device: --device cpu is the CPU; auto is CUDA exactly when a CUDA device is visible", "[tensor][device]") {
  CHECK(resolve_device("cpu") == torch::Device(torch::kCPU));
  CHECK(resolve_device("cpu", 3) == torch::Device(torch::kCPU));
  const torch::Device automatic = resolve_device("auto");
  if (torch::cuda::is_available())
    CHECK(automatic == torch::Device(torch::kCUDA, 0));
  else
    CHECK(automatic == torch::Device(torch::kCPU));
}

TEST_CASE("resolve_device: --device cuda without CUDA is a usage error that says why and what to use", "[tensor][device]") {
  if (torch::cuda::is_available()) {
    CHECK(resolve_device("cuda") == torch::Device(torch::kCUDA, 0));
    CHECK(resolve_device("cuda:0") == torch::Device(torch::kCUDA, 0));
    return;
  }
  for (const char* spec : {"cuda", "cuda:0", "cuda:1"}) {
    INFO(spec);
    CHECK_THROWS_AS(resolve_device(spec), em::UsageError);
    CHECK_THROWS_WITH(resolve_device(spec), Catch::StartsWith(std::string("--device ") + spec + ": ") &&
                                                (Catch::Contains("this LibTorch has no CUDA") ||
                                                 Catch::Contains("no CUDA device is visible")) &&
                                                Catch::Contains("--device cpu"));
  }
  CHECK_THROWS_AS(resolve_device("cuda", 2), em::UsageError);
}

TEST_CASE("a --device that is none of auto, cpu, cuda, cuda:N is a usage error naming it", "[tensor][device]") {
  for (const char* spec : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda0", "", "mps"}) {
    INFO("'" << spec << "'");
    CHECK_THROWS_AS(resolve_device(spec), em::UsageError);
    CHECK_THROWS_WITH(resolve_device(spec), Catch::Contains(std::string("--device ") + spec + ":") &&
                                                Catch::Contains("auto, cpu, cuda or cuda:N"));
  }
}

TEST_CASE("LOCAL_RANK: unset or empty is -1, a whole number is the rank, anything else a usage error",
          "[tensor][device]") {
  {
    ScopedEnv env("LOCAL_RANK", nullptr);
    CHECK(em::tensor::local_rank_from_env() == -1);
  }
  {
    ScopedEnv env("LOCAL_RANK", "");
    CHECK(em::tensor::local_rank_from_env() == -1);
  }
  {
    ScopedEnv env("LOCAL_RANK", "3");
    CHECK(em::tensor::local_rank_from_env() == 3);
  }
  for (const char* bad : {"x", "-1", "1.5", " 2"}) {
    ScopedEnv env("LOCAL_RANK", bad);
    CHECK_THROWS_AS(em::tensor::local_rank_from_env(), em::UsageError);
    CHECK_THROWS_WITH(em::tensor::local_rank_from_env(), Catch::StartsWith(std::string("LOCAL_RANK=") + bad));
  }
}

TEST_CASE("to_device on the CPU is the identity: every tensor shared, nothing copied", "[tensor][device]") {
  const Batch b = full_batch();
  const Batch moved = em::tensor::to_device(b, torch::kCPU);
  const auto before = tensors_of(b), after = tensors_of(moved);
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i].is_same(before[i]));
  CHECK(moved.indices == b.indices);
  CHECK(moved.skipped == 1);
  CHECK(moved.boxes.size() == 2);
  // Undefined fields (other algorithms') stay undefined.
  Batch sparse;
  sparse.pixel_values = torch::zeros({1, 3, 2, 2});
  const Batch sparse_moved = em::tensor::to_device(sparse, torch::kCPU);
  CHECK_FALSE(sparse_moved.labels.defined());
  CHECK_FALSE(sparse_moved.pixel_mask.defined());
}

TEST_CASE("batches are pinned only for a CUDA target on a LibTorch with CUDA", "[tensor][device]") {
  CHECK_FALSE(em::tensor::pin_memory_available(torch::kCPU));
  CHECK(em::tensor::pin_memory_available(torch::Device(torch::kCUDA, 0)) == torch::cuda::is_available());
}

TEST_CASE("device_of a module is where its parameters are, the CPU for one without", "[tensor][device]") {
  torch::nn::Linear linear(3, 2);
  CHECK(em::tensor::device_of(*linear) == torch::Device(torch::kCPU));
  torch::nn::Sequential empty;
  CHECK(em::tensor::device_of(*empty) == torch::Device(torch::kCPU));
}

TEST_CASE("to_device moves every tensor field to CUDA and back with the same values", "[tensor][device][cuda]") {
  const auto device = em::test::cuda_test_device();
  if (!device) return;
  const Batch b = full_batch();
  const Batch pinned = em::tensor::pin_memory(b);
  for (const auto& t : tensors_of(pinned)) CHECK(t.is_pinned());
  const Batch on_gpu = em::tensor::to_device(pinned, *device);
  for (const auto& t : tensors_of(on_gpu)) CHECK(t.device() == *device);
  const Batch back = em::tensor::to_device(on_gpu, torch::kCPU);
  const auto want = tensors_of(b), got = tensors_of(back);
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(got[i].is_cpu());
    CHECK(torch::equal(got[i], want[i]));
  }
  CHECK(resolve_device("cuda:0") == *device);
  {
    ScopedEnv env("LOCAL_RANK", "0");
    CHECK(resolve_device("cuda", em::tensor::local_rank_from_env()) == *device);
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  CHECK_THROWS_WITH(resolve_device("cuda", count), Catch::Contains("LOCAL_RANK=" + std::to_string(count)));
  CHECK_THROWS_WITH(resolve_device("cuda:" + std::to_string(count)), Catch::Contains("visible"));
}

TEST_CASE("the loader pins the batches it builds when asked", "[tensor][device][cuda]") {
  const auto device = em::test::cuda_test_device();
  if (!device) return;
  for (int workers : {0, 2}) {
    em::tensor::PrefetchLoader loader(4, [](size_t) { return full_batch(); }, workers, 2, /*pin_memory=*/true);
    int n = 0;
    while (auto batch = loader.next()) {
      ++n;
      for (const auto& t : tensors_of(*batch)) CHECK(t.is_pinned());
    }
    CHECK(n == 4);
  }
}
