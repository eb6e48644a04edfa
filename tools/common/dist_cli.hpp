// Data-parallel tools (em-train, em-eval): --nproc_per_node, the launcher environments (torchrun, SLURM) and how a
// rank other than 0 talks (docs/distributed.md).
#pragma once
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>

#include "em/core/error.hpp"
#include "em/dist/group.hpp"
#include "em/dist/launch.hpp"

namespace em::cli {

void bind_nproc_flag(CLI::App& app, int& nproc_per_node);

// With --nproc_per_node N > 1: runs N workers of this program (argc/argv without the flag) and returns the exit
// status of the run; nullopt when this process is to do the work itself. A usage error when a launcher already
// started this process.
std::optional<ExitCode> launch_local_workers(int nproc_per_node, int argc, char** argv);

// This process's place in the run (from the environment): ranks other than 0 print only warnings and errors,
// prefixed "[rank N]"; then the rendezvous. A group of one without a launcher.
std::unique_ptr<dist::Group> join_run(const torch::Device& device, int64_t timeout_s);

}  // namespace em::cli
