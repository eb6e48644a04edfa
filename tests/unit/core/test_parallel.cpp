#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "em/core/error.hpp"
#include "em/core/parallel.hpp"
#include "em/core/threads.hpp"

TEST_CASE("parallel_for runs every index once, on at most the threads asked for", "[core][parallel]") {
  for (int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> hits(1000);
    std::mutex m;
    std::set<std::thread::id> ids;
    std::set<std::size_t> workers;
    em::ParallelOptions options;
    options.threads = threads;
    em::parallel_for(hits.size(), options, [&](std::size_t i, std::size_t worker) {
      hits[i].fetch_add(1);
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
      workers.insert(worker);
    });
    for (auto& h : hits) REQUIRE(h.load() == 1);
    CHECK(ids.size() <= static_cast<std::size_t>(threads));
    CHECK(*workers.rbegin() < static_cast<std::size_t>(threads));
  }
}

TEST_CASE("parallel_for: never more workers than items; 0 threads = usable CPUs", "[core][parallel]") {
  CHECK(em::parallel_workers(0, 4) == 0);
  CHECK(em::parallel_workers(3, 8) == 3);
  CHECK(em::parallel_workers(100, 0) == static_cast<std::size_t>(std::min(100, em::usable_cpus())));
  int calls = 0;
  em::parallel_for(0, {}, [&](std::size_t, std::size_t) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE("parallel_for rethrows the first exception and stops handing out work", "[core][parallel]") {
  for (int threads : {1, 4}) {
    std::atomic<int> ran{0};
    em::ParallelOptions options;
    options.threads = threads;
    options.progress_label = "test";  // the progress-drawing path must stop on an error too
    options.progress_min = 1;
    REQUIRE_THROWS_WITH(em::parallel_for(100000, options,
                                         [&](std::size_t i, std::size_t) {
                                           ran.fetch_add(1);
                                           if (i == 10) throw std::runtime_error("boom");
                                         }),
                        "boom");
    CHECK(ran.load() < 100000);
  }
}

TEST_CASE("em::Error keeps a file's path apart from the reason", "[core][error]") {
  em::Error plain("something broke");
  CHECK(plain.path().empty());
  CHECK(plain.reason() == "something broke");
  CHECK(std::string(plain.what()) == "something broke");
  try {
    em::fail_at("a/b.png", "not an image ({} bytes)", 3);
  } catch (const em::Error& e) {
    CHECK(std::string(e.what()) == "a/b.png: not an image (3 bytes)");
    CHECK(e.path() == "a/b.png");
    CHECK(e.reason() == "not an image (3 bytes)");
    CHECK(e.code() == em::ExitCode::failure);
  }
}
