#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "em/core/error.hpp"
#include "em/io/request.hpp"
#include "em/io/image.hpp"
#include "em/serve/batcher.hpp"
#include "em/serve/http_server.hpp"

using em::infer::Prepared;
using em::io::Json;
using em::serve::Batcher;
using em::serve::BatcherOptions;

namespace {

Prepared tagged(float tag) { return {torch::full({1}, tag), 1, 1, {}}; }
float tag_of(const Prepared& p) { return p.pixel_values.item<float>(); }

// A predictor stand-in: answers each image with its tag, records batch sizes, fails on a negative tag.
struct FakeModel {
  std::mutex mutex;
  std::vector<size_t> batch_sizes;
  std::vector<Json> operator()(const std::vector<Prepared>& batch) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      batch_sizes.push_back(batch.size());
    }
    std::vector<Json> out;
    for (const auto& p : batch) {
      if (tag_of(p) < 0) em::fail("bad image {}", tag_of(p));
      out.push_back(Json{{"tag", tag_of(p)}});
    }
    return out;
  }
};

Batcher::PredictFn use(FakeModel& model) {
  return [&model](const std::vector<Prepared>& b) { return model(b); };
}

}  // namespace

TEST_CASE("concurrent submissions share forward passes and each gets its own results", "[serve]") {
  FakeModel model;
  Batcher batcher(use(model), BatcherOptions{8, 200});
  std::vector<std::thread> threads;
  std::atomic<int> correct{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto results = batcher.submit({tagged(static_cast<float>(i)), tagged(static_cast<float>(100 + i))}).get();
      if (results.size() == 2 && results[0]["tag"] == i && results[1]["tag"] == 100 + i) ++correct;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(correct == 8);
  const auto stats = batcher.stats();
  CHECK(stats.requests == 8);
  CHECK(stats.images == 16);
  CHECK(stats.batches < 8);  // 2-image submissions, up to 8 images per pass: batched
  CHECK(stats.busy_seconds >= 0);
  for (size_t n : model.batch_sizes) CHECK(n <= 8);
}

TEST_CASE("a batch is not held back longer than max_batch_delay_ms", "[serve]") {
  FakeModel model;
  Batcher batcher(use(model), BatcherOptions{16, 30});
  const auto t0 = std::chrono::steady_clock::now();
  auto results = batcher.submit({tagged(1)}).get();
  const auto waited = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(results.at(0)["tag"] == 1);
  CHECK(waited >= 25);
  CHECK(waited < 2000);
}

TEST_CASE("a submission that breaks the model fails alone, its batch companions get their results", "[serve]") {
  FakeModel model;
  Batcher batcher(use(model), BatcherOptions{16, 300});
  auto good1 = batcher.submit({tagged(1)});
  auto bad = batcher.submit({tagged(2), tagged(-5)});
  auto good2 = batcher.submit({tagged(3)});
  CHECK(good1.get().at(0)["tag"] == 1);
  CHECK(good2.get().at(0)["tag"] == 3);
  CHECK_THROWS_WITH(bad.get(), Catch::Contains("bad image -5"));
  CHECK(model.batch_sizes.front() == 4);  // tried together first
}

TEST_CASE("a submission larger than max_batch_size runs in chunks, results in order", "[serve]") {
  FakeModel model;
  Batcher batcher(use(model), BatcherOptions{4, 0});
  std::vector<Prepared> images;
  for (int i = 0; i < 10; ++i) images.push_back(tagged(static_cast<float>(i)));
  auto results = batcher.submit(images).get();
  REQUIRE(results.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(results[static_cast<size_t>(i)]["tag"] == i);
  CHECK(model.batch_sizes == std::vector<size_t>{4, 4, 2});
}

TEST_CASE("stop answers what is queued, then refuses new submissions", "[serve]") {
  FakeModel model;
  Batcher batcher(use(model), BatcherOptions{16, 10000});
  auto queued = batcher.submit({tagged(7)});
  batcher.stop();  // does not wait out the 10 s delay
  CHECK(queued.get().at(0)["tag"] == 7);
  CHECK_THROWS_WITH(batcher.submit({tagged(8)}), Catch::Contains("shutting down"));
}

TEST_CASE("batcher options name the flag and the range", "[serve]") {
  CHECK_THROWS_WITH((BatcherOptions{0, 5}.validate()), Catch::Contains("--batch_size 0"));
  CHECK_THROWS_WITH((BatcherOptions{4, -1}.validate()), Catch::Contains("--max_batch_delay_ms -1"));
  em::serve::ServeOptions o;
  o.port = 70000;
  CHECK_THROWS_AS(o.validate(), em::UsageError);
}

TEST_CASE("a bounded queue refuses a submission past max_queue_images at once, but never one into an empty queue",
          "[serve]") {
  // The model is held inside its first pass, so everything submitted next waits in the queue.
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  std::atomic<int> passes{0};
  Batcher batcher(
      [&](const std::vector<Prepared>& batch) {
        ++passes;
        gate.wait();
        std::vector<Json> out;
        for (const auto& p : batch) out.push_back(Json{{"tag", tag_of(p)}});
        return out;
      },
      BatcherOptions{1, 0, /*max_queue_images=*/3});
  auto running = batcher.submit({tagged(1)});
  while (passes < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The queue is empty again (the first is in its pass): 5 images > 3 still enter, alone.
  auto big = batcher.submit({tagged(2), tagged(3), tagged(4), tagged(5), tagged(6)});
  CHECK(batcher.stats().queued_images == 5);
  CHECK_THROWS_AS(batcher.submit({tagged(7)}), em::serve::QueueFull);
  CHECK_THROWS_WITH(batcher.submit({tagged(7)}), Catch::Contains("--max_queue_images 3"));
  CHECK(batcher.stats().rejected == 2);
  open.set_value();
  CHECK(running.get().size() == 1);
  CHECK(big.get().size() == 5);
  // Room again.
  CHECK(batcher.submit({tagged(8), tagged(9), tagged(10)}).get().size() == 3);
}

TEST_CASE("cancel takes a queued submission out before its forward pass, and not one already answered",
          "[serve]") {
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  std::mutex seen_mutex;
  std::vector<float> seen;
  Batcher batcher(
      [&](const std::vector<Prepared>& batch) {
        gate.wait();
        std::vector<Json> out;
        for (const auto& p : batch) {
          std::lock_guard<std::mutex> lock(seen_mutex);
          seen.push_back(tag_of(p));
          out.push_back(Json{{"tag", tag_of(p)}});
        }
        return out;
      },
      BatcherOptions{1, 0});
  uint64_t first = 0, second = 0;
  auto a = batcher.submit({tagged(1)}, &first);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the first is in its pass, held by the gate
  auto b = batcher.submit({tagged(2)}, &second);
  CHECK(second != first);
  CHECK(batcher.stats().queued_images == 1);
  CHECK(batcher.cancel(second));
  CHECK(batcher.stats().queued_images == 0);
  CHECK(batcher.stats().cancelled == 1);
  CHECK_FALSE(batcher.cancel(second));
  open.set_value();
  CHECK(a.get().size() == 1);
  CHECK_FALSE(batcher.cancel(first));
  batcher.stop();
  CHECK(seen == std::vector<float>{1});  // the cancelled image never reached the model
}

TEST_CASE("the batcher tells its observer the size of every forward pass", "[serve]") {
  FakeModel model;
  std::mutex mutex;
  std::vector<int64_t> observed;
  Batcher batcher(use(model), BatcherOptions{2, 0}, [&](int64_t images, double seconds) {
    std::lock_guard<std::mutex> lock(mutex);
    observed.push_back(images);
    CHECK(seconds >= 0);
  });
  batcher.submit({tagged(1), tagged(2), tagged(3)}).get();  // one submission over a batch: chunks of 2 and 1
  batcher.stop();
  CHECK(observed == std::vector<int64_t>{2, 1});
}
