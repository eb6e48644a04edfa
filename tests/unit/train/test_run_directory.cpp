// The run directory against a second writer, a killed run's leftovers and an overwrite over the user's files.
#include <catch2/catch.hpp>

#include <fstream>

#include "em/core/error.hpp"
#include "em/train/checkpoint.hpp"
#include "em/train/run_directory.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Contains;
using em::train::RunDirectory;

namespace {
void touch(const fs::path& p, const std::string& text = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("a second writer of one run directory is refused at once; the lock goes with its owner",
          "[train][run_directory][hostile]") {
  em::test::TempDir tmp;
  const fs::path out = tmp / "run";
  {
    RunDirectory first(out, false, false);
    CHECK(fs::exists(out / ".emkit.lock"));
    CHECK_THROWS_WITH(RunDirectory(out, false, false),
                      Contains("another em-train (pid " + std::to_string(::getpid()) + ") is writing this run directory"));
    CHECK_THROWS_WITH(RunDirectory(out, true, true), Contains("another em-train"));
    // A process that does not write (a data-parallel rank > 0) takes no lock.
    CHECK_NOTHROW(RunDirectory(out, false, false, /*writer=*/false));
  }
  CHECK_NOTHROW(RunDirectory(out, false, false));
}

TEST_CASE("a killed run's hidden leftovers are removed when the folder is claimed, nothing else",
          "[train][run_directory][hostile]") {
  em::test::TempDir tmp;
  const fs::path out = tmp / "run";
  touch(out / ".tmp-checkpoint-8-123-abc/model.safetensors");
  touch(out / ".tmp-removing-checkpoint-4/trainer_state.json");
  touch(out / ".tmp-old-model/config.json");
  touch(out / "checkpoint-12/trainer_state.json");
  touch(out / "notes.txt");
  RunDirectory run(out, /*overwrite=*/false, /*resuming=*/true);
  CHECK_FALSE(fs::exists(out / ".tmp-checkpoint-8-123-abc"));
  CHECK_FALSE(fs::exists(out / ".tmp-removing-checkpoint-4"));
  CHECK_FALSE(fs::exists(out / ".tmp-old-model"));
  CHECK(fs::exists(out / "checkpoint-12/trainer_state.json"));
  CHECK(fs::exists(out / "notes.txt"));
}

TEST_CASE("overwrite_output_dir removes emkit's entries only, and stops before removing a user's file in them",
          "[train][run_directory][hostile]") {
  em::test::TempDir tmp;
  const fs::path out = tmp / "run";
  touch(out / "model/config.json");
  touch(out / "model/model.safetensors");
  touch(out / "model/my-notes.md");
  touch(out / "checkpoint-5/trainer_state.json");
  touch(out / "metrics.jsonl");
  touch(out / "README.md");
  CHECK_THROWS_WITH(RunDirectory(out, /*overwrite=*/true, false),
                    Contains("my-notes.md was not written by emkit; move it out of"));
  CHECK(fs::exists(out / "model/model.safetensors"));  // nothing was removed
  CHECK(fs::exists(out / "checkpoint-5/trainer_state.json"));
  fs::remove(out / "model/my-notes.md");
  touch(out / "runs/events.out.tfevents.1.host.1.0");
  touch(out / "runs/other-experiment/events.out.tfevents.2");
  CHECK_THROWS_WITH(RunDirectory(out, true, false), Contains("other-experiment was not written by emkit"));
  fs::remove_all(out / "runs/other-experiment");
  { RunDirectory run(out, true, false); }
  CHECK_FALSE(fs::exists(out / "model"));
  CHECK_FALSE(fs::exists(out / "checkpoint-5"));
  CHECK_FALSE(fs::exists(out / "metrics.jsonl"));
  CHECK(fs::exists(out / "README.md"));
}

TEST_CASE("rotating checkpoints never leaves a listed checkpoint without its files", "[train][run_directory][hostile]") {
  em::test::TempDir tmp;
  const fs::path out = tmp / "run";
  for (int step : {2, 4, 6}) {
    touch(out / ("checkpoint-" + std::to_string(step)) / "model.safetensors");
    touch(out / ("checkpoint-" + std::to_string(step)) / "trainer_state.json");
  }
  em::train::rotate_checkpoints(out, 1, -1);
  const auto left = em::train::list_checkpoints(out);
  REQUIRE(left.size() == 1);
  CHECK(left[0].first == 6);
  for (const auto& entry : fs::directory_iterator(out)) CHECK(entry.path().filename() == "checkpoint-6");
}

namespace {
std::vector<int64_t> steps_in(const fs::path& out) {
  std::vector<int64_t> steps;
  for (const auto& [step, path] : em::train::list_checkpoints(out)) steps.push_back(step);
  return steps;
}
fs::path checkpoints(const fs::path& out, std::initializer_list<int> steps) {
  fs::remove_all(out);
  for (int step : steps) touch(out / ("checkpoint-" + std::to_string(step)) / "trainer_state.json");
  return out;
}
}  // namespace

TEST_CASE("rotation keeps the best checkpoint besides the newest limit - 1, and with limit 1 the newest beside it (HF's "
          "_sorted_checkpoints and _rotate_checkpoints)",
          "[train][run_directory]") {
  em::test::TempDir tmp;
  const fs::path out = tmp / "run";
  using em::train::rotate_checkpoints;
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 2, -1);
  CHECK(steps_in(out) == std::vector<int64_t>{6, 8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 2, 4);
  CHECK(steps_in(out) == std::vector<int64_t>{4, 8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 3, 2);
  CHECK(steps_in(out) == std::vector<int64_t>{2, 6, 8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 1, 4);
  CHECK(steps_in(out) == std::vector<int64_t>{4, 8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 1, 8);  // the best is the newest
  CHECK(steps_in(out) == std::vector<int64_t>{8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 1, -1);
  CHECK(steps_in(out) == std::vector<int64_t>{8});
  rotate_checkpoints(checkpoints(out, {2, 4, 6, 8}), 0, 4);  // 0: keep all
  CHECK(steps_in(out) == std::vector<int64_t>{2, 4, 6, 8});
  em::train::keep_only_checkpoint(checkpoints(out, {2, 4, 6, 8}), 4);
  CHECK(steps_in(out) == std::vector<int64_t>{4});
  em::train::keep_only_checkpoint(checkpoints(out, {2, 4, 6, 8}), 5);  // no such checkpoint: nothing goes
  CHECK(steps_in(out) == std::vector<int64_t>{2, 4, 6, 8});
}
