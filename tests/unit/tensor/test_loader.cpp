// The prefetching loader hands batches out in order with errors at the right batch.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/tensor/loader.hpp"

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

using em::tensor::Batch;
using em::tensor::PrefetchLoader;

namespace {
Batch tagged_batch(size_t index) {
  Batch b;
  b.indices = {static_cast<int64_t>(index)};
  b.labels = torch::full({1}, static_cast<int64_t>(index), torch::kInt64);
  return b;
}
}  // namespace

TEST_CASE("batches come out in index order whatever order the workers finish them", "[data][loader]") {
  for (int workers : {0, 1, 3}) {
    INFO("workers " << workers);
    PrefetchLoader loader(20, [](size_t i) {
      // Later batches finish first: a loader that returned in completion order would fail.
      std::this_thread::sleep_for(std::chrono::microseconds((20 - i) * 300));
      return tagged_batch(i);
    }, workers, 4);
    std::vector<int64_t> seen;
    while (auto b = loader.next()) seen.push_back(b->indices[0]);
    std::vector<int64_t> expected(20);
    for (int i = 0; i < 20; ++i) expected[i] = i;
    CHECK(seen == expected);
    CHECK_FALSE(loader.next().has_value());
  }
}

TEST_CASE("an exception in make_batch is rethrown for that batch and the next batch still comes", "[data][loader]") {
  for (int workers : {0, 2}) {
    INFO("workers " << workers);
    PrefetchLoader loader(5, [](size_t i) {
      if (i == 2) em::fail("batch {}: broken.png: not an image (zero bytes)", i);
      return tagged_batch(i);
    }, workers, 2);
    CHECK(loader.next()->indices[0] == 0);
    CHECK(loader.next()->indices[0] == 1);
    CHECK_THROWS_WITH(loader.next(), "batch 2: broken.png: not an image (zero bytes)");
    CHECK(loader.next()->indices[0] == 3);
    CHECK(loader.next()->indices[0] == 4);
    CHECK_FALSE(loader.next().has_value());
  }
}

TEST_CASE("workers build at most queue_depth batches ahead of the consumer", "[data][loader]") {
  std::atomic<size_t> highest{0};
  PrefetchLoader loader(100, [&](size_t i) {
    size_t prev = highest.load();
    while (i > prev && !highest.compare_exchange_weak(prev, i)) {}
    return tagged_batch(i);
  }, 2, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(highest.load() <= 2);  // batches 0..2 only: the window is 3
  loader.next();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(highest.load() <= 3);
}

TEST_CASE("destroying a loader mid-epoch stops and joins its workers promptly", "[data][loader]") {
  std::atomic<int> built{0};
  auto start = std::chrono::steady_clock::now();
  {
    PrefetchLoader loader(1000, [&](size_t i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ++built;
      return tagged_batch(i);
    }, 4, 8);
    loader.next();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 1.0);
  CHECK(built.load() < 30);
}

TEST_CASE("loader workers run LibTorch ops single-threaded and leave the caller's thread count alone",
          "[data][loader]") {
  int before = at::get_num_threads();
  torch::set_num_threads(2);
  std::atomic<int> worker_threads{-1};
  {
    PrefetchLoader loader(1, [&](size_t i) {
      worker_threads = at::get_num_threads();
      return tagged_batch(i);
    }, 1, 1);
    loader.next();
  }
  CHECK(worker_threads.load() == 1);
  CHECK(at::get_num_threads() == 2);
  torch::set_num_threads(before);
}
