#include "common/dist_cli.hpp"

#include <string>
#include <vector>

#include "common/cli.hpp"
#include "em/core/log.hpp"
#include "em/core/threads.hpp"
#include "em/dist/spawn.hpp"

namespace em::cli {
namespace {

// The workers' arguments: this program's, without --nproc_per_node and its value.
std::vector<std::string> worker_arguments(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc_per_node") {
      ++i;
      continue;
    }
    if (a.rfind("--nproc_per_node=", 0) == 0) continue;
    args.push_back(a);
  }
  return args;
}

}  // namespace

void bind_nproc_flag(CLI::App& app, int& nproc_per_node) {
  app.add_option("--nproc_per_node", nproc_per_node,
                 "Run as N data-parallel processes on this host, like torchrun --standalone (docs/distributed.md) "
                 "[default 1]")
      ->check(CLI::Range(1, 1024));
}

std::optional<ExitCode> launch_local_workers(int nproc_per_node, int argc, char** argv) {
  if (nproc_per_node <= 1) return std::nullopt;
  const dist::LaunchEnv env = dist::launch_env();
  if (env.distributed())
    usage_fail("--nproc_per_node {}: this process is already {} (WORLD_SIZE or SLURM variables are set); use the "
               "launcher or --nproc_per_node, not both",
               nproc_per_node, env.describe());
  // As torchrun sets OMP_NUM_THREADS for its workers: the CPUs shared out, unless --threads says otherwise.
  const int threads = common_options().threads > 0 ? 0 : std::max(1, usable_cpus() / nproc_per_node);
  return static_cast<ExitCode>(dist::run_local_workers(nproc_per_node, worker_arguments(argc, argv), threads));
}

std::unique_ptr<dist::Group> join_run(const torch::Device& device, int64_t timeout_s) {
  const dist::LaunchEnv env = dist::launch_env();
  if (env.distributed() && env.rank != 0) {
    log::set_program(fmt::format("[rank {}] {}", env.rank, log::program()));
    if (log::level() == log::Level::info) log::set_level(log::Level::warning);
  }
  return dist::Group::join(env, device, std::chrono::seconds(timeout_s));
}

}  // namespace em::cli
