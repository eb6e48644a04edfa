// The launch contracts: which variables make a process a rank of a data-parallel run, and the errors for bad ones.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "em/core/error.hpp"
#include "em/dist/launch.hpp"
#include "em/train/eval_loop.hpp"

namespace {
em::dist::LaunchEnv read(const std::map<std::string, std::string>& vars) {
  return em::dist::launch_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST_CASE("torchrun / PyTorchJob variables make a rank", "[dist][launch]") {
  auto env = read({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "node-a"}, {"MASTER_PORT", "29400"}});
  CHECK(env.distributed());
  CHECK(env.launcher == "torchrun");
  CHECK(env.rank == 3);
  CHECK(env.world_size == 4);
  CHECK(env.local_rank == 1);
  CHECK(env.local_world_size == 2);
  CHECK(env.master_addr == "node-a");
  CHECK(env.master_port == 29400);
}

TEST_CASE("SLURM variables make a rank; MASTER_PORT defaults to torchrun's 29500", "[dist][launch]") {
  auto env = read({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                   {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"MASTER_ADDR", "10.0.0.1"}});
  CHECK(env.launcher == "slurm");
  CHECK(env.rank == 5);
  CHECK(env.world_size == 8);
  CHECK(env.local_rank == 1);
  CHECK(env.local_world_size == 4);
  CHECK(env.master_port == 29500);
}

TEST_CASE("nothing set, or a world of one, is a single process", "[dist][launch]") {
  CHECK_FALSE(read({}).distributed());
  CHECK_FALSE(read({{"WORLD_SIZE", "1"}, {"RANK", "0"}}).distributed());
  CHECK_FALSE(read({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed());
  CHECK(read({}).describe() == "a single process");
}

TEST_CASE("bad launch variables are usage errors naming the variable", "[dist][launch]") {
  CHECK_THROWS_WITH(read({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}),
                    Catch::Contains("RANK=2 is outside [0, WORLD_SIZE=2)"));
  CHECK_THROWS_WITH(read({{"WORLD_SIZE", "two"}}), Catch::Contains("WORLD_SIZE='two'"));
  CHECK_THROWS_WITH(read({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}}),
                    Catch::Contains("MASTER_ADDR is not set"));
  CHECK_THROWS_WITH(read({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "a"}}),
                    Catch::Contains("MASTER_PORT is not set"));
  CHECK_THROWS_AS(read({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}),
                  em::UsageError);
}

TEST_CASE("evaluation shards are contiguous, cover every item once and differ by at most one", "[dist][launch]") {
  for (int64_t n : {0, 1, 5, 7, 100}) {
    for (int world : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        auto [begin, end] = em::train::eval_shard(n, r, world);
        CHECK(begin == next);
        CHECK(end - begin >= n / world);
        CHECK(end - begin <= n / world + 1);
        next = end;
      }
      CHECK(next == n);
    }
  }
}
