// Who this process is in a data-parallel run, from the environment its launcher set (docs/distributed.md):
//   torchrun / Kubeflow PyTorchJob: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
//   SLURM (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE, with MASTER_ADDR (and
//   MASTER_PORT, default 29500) from the environment;
//   em-train --nproc_per_node N: sets the torchrun variables for its workers (spawn.hpp).
// Nothing set (or a world of one): a single process.
#pragma once
#include <functional>
#include <string>

namespace em::dist {

inline constexpr int kDefaultMasterPort = 29500;  // torchrun's

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = kDefaultMasterPort;
  std::string launcher;  // "torchrun" (the RANK/WORLD_SIZE variables), "slurm", or "" for a single process

  bool distributed() const { return world_size > 1; }
  // "rank 1 of 2 (torchrun, local rank 1, master 127.0.0.1:29500)"
  std::string describe() const;
};

// Reads the variables through `get` (std::getenv in the tools; a map in tests). Throws em::UsageError naming the
// variable for a value that is not a number, a rank outside [0, WORLD_SIZE), or a missing MASTER_ADDR/MASTER_PORT.
LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get);
LaunchEnv launch_env();  // from this process's environment

}  // namespace em::dist
