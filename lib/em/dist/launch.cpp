#include "em/dist/launch.hpp"

#include <cstdlib>

#include <fmt/format.h>

#include "em/core/error.hpp"

namespace em::dist {
namespace {

int int_var(const std::function<const char*(const char*)>& get, const char* name, int lo, int fallback) {
  const char* raw = get(name);
  if (raw == nullptr || *raw == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(raw, &end, 10);
  if (*end != '\0' || v < lo || v > 1 << 20)
    usage_fail("environment variable {}='{}': expected an integer >= {}", name, raw, lo);
  return static_cast<int>(v);
}

// SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE look like "4" or "4(x2)" (4 tasks on each of 2 nodes); the first
// count is this node's on a homogeneous allocation.
int slurm_tasks_per_node(const std::function<const char*(const char*)>& get, int fallback) {
  for (const char* name : {"SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    const char* raw = get(name);
    if (raw == nullptr || *raw == '\0') continue;
    const long v = std::strtol(raw, nullptr, 10);
    if (v >= 1) return static_cast<int>(v);
  }
  return fallback;
}

void read_master(const std::function<const char*(const char*)>& get, LaunchEnv& env, bool port_required) {
  const char* addr = get("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0')
    usage_fail("{} started {} processes but MASTER_ADDR is not set: set MASTER_ADDR (the host of rank 0) and "
               "MASTER_PORT (docs/distributed.md)",
               env.launcher, env.world_size);
  env.master_addr = addr;
  const char* port = get("MASTER_PORT");
  if (port_required && (port == nullptr || *port == '\0'))
    usage_fail("{} started {} processes but MASTER_PORT is not set (docs/distributed.md)", env.launcher,
               env.world_size);
  env.master_port = int_var(get, "MASTER_PORT", 1, kDefaultMasterPort);
  if (env.master_port > 65535) usage_fail("environment variable MASTER_PORT={}: expected a port in [1, 65535]", port);
}

void check_rank(const LaunchEnv& env, const char* rank_var, const char* size_var) {
  if (env.rank >= env.world_size)
    usage_fail("{}={} is outside [0, {}={})", rank_var, env.rank, size_var, env.world_size);
  if (env.local_rank >= env.local_world_size && env.local_world_size > 0)
    usage_fail("the local rank {} is outside [0, {}) (LOCAL_RANK / SLURM_LOCALID against LOCAL_WORLD_SIZE)",
               env.local_rank, env.local_world_size);
}

}  // namespace

std::string LaunchEnv::describe() const {
  if (!distributed()) return "a single process";
  return fmt::format("rank {} of {} ({}, local rank {} of {}, master {}:{})", rank, world_size, launcher, local_rank,
                     local_world_size, master_addr, master_port);
}

LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get) {
  LaunchEnv env;
  if (const char* ws = get("WORLD_SIZE"); ws != nullptr && *ws != '\0') {
    env.launcher = "torchrun";
    env.world_size = int_var(get, "WORLD_SIZE", 1, 1);
    env.rank = int_var(get, "RANK", 0, 0);
    env.local_rank = int_var(get, "LOCAL_RANK", 0, env.rank);
    env.local_world_size = int_var(get, "LOCAL_WORLD_SIZE", 1, env.world_size);
    if (env.distributed()) read_master(get, env, /*port_required=*/true);
    check_rank(env, "RANK", "WORLD_SIZE");
  } else if (const char* nt = get("SLURM_NTASKS"); nt != nullptr && *nt != '\0' && get("SLURM_PROCID") != nullptr) {
    env.launcher = "slurm";
    env.world_size = int_var(get, "SLURM_NTASKS", 1, 1);
    env.rank = int_var(get, "SLURM_PROCID", 0, 0);
    env.local_rank = int_var(get, "SLURM_LOCALID", 0, 0);
    env.local_world_size = slurm_tasks_per_node(get, env.world_size);
    if (env.distributed()) read_master(get, env, /*port_required=*/false);
    check_rank(env, "SLURM_PROCID", "SLURM_NTASKS");
  }
  if (!env.distributed()) env = LaunchEnv{};
  return env;
}

LaunchEnv launch_env() {
  return launch_env_from([](const char* name) { return std::getenv(name); });
}

}  // namespace em::dist
