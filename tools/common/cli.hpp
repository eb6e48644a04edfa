// The CLI layer every tool shares: help text shape, standard flags, and run_main() — the one place that catches
// em::Error, CLI11 errors and std::exception, prints "TOOL: error: ..." and returns the exit code (0/1/2/130).
// Without LibTorch: the base-layer tools (em-b64, em-validate, em-metrics) link only this; the LibTorch tools wrap
// it with torch_cli.hpp.
#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "em/core/error.hpp"

namespace em::cli {

struct ToolInfo {
  std::string name;      // "em-train"
  std::string purpose;   // one line
  std::string usage;     // "em-train --algo classification --data DIR --output_dir OUT [options]"
  std::string example;   // a real pipe / Makefile line
  std::string see_also;  // "em-eval(1), em-predict(1)"
  // --threads' help; empty: the tool has no worker threads and no --threads flag.
  std::string threads_help = "Worker threads (0 = every CPU this process may use)";
};

// Flags every tool has: --quiet, --verbose, --version, and --threads where the tool runs threads.
struct CommonOptions {
  int threads = 0;  // 0 = every usable CPU (em::tensor::set_compute_threads)
  bool quiet = false;
  bool verbose = false;
};

// bind: declare the tool's options on `app`; body: do the work, return the exit code.
int run_main(int argc, char** argv, const ToolInfo& info, const std::function<void(CLI::App&)>& bind,
             const std::function<ExitCode()>& body);

// Access to the common options after parsing.
const CommonOptions& common_options();

}  // namespace em::cli
