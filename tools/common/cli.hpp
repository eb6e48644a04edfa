// The CLI layer every tool shares: help text shape, standard flags, and run_main() — the one place that catches
// em::Error, CLI11 errors and std::exception, prints "TOOL: error: ..." and returns the exit code (0/1/2/130).
// Without LibTorch: the base-layer tools (em-b64, em-validate, em-metrics) link only this; the LibTorch tools wrap
// it with torch_cli.hpp.
#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "em/core/error.hpp"
#include "em/io/json.hpp"

namespace em::cli {

struct ToolInfo {
  std::string name;      // "em-train"
  std::string purpose;   // one line
  std::string usage;     // "em-train --algo classification --data DIR --output_dir OUT [options]"
  std::string example;   // a real pipe / Makefile line
  std::string see_also;  // "em-eval(1), em-predict(1)"
  // --threads' help; empty: the tool has no worker threads and no --threads flag.
  std::string threads_help = "Worker threads (0 = every CPU this process may use)";
  // Run many forward passes (em-train, em-eval, em-serve): keep freed memory for the next pass instead of giving it
  // back to the kernel (core/allocator.hpp); LibTorch tools only.
  bool keep_freed_memory = false;
};

// Flags every tool has: --quiet, --verbose, --version, --max_image_pixels, and --threads where the tool runs threads.
struct CommonOptions {
  int threads = 0;  // 0 = every usable CPU (em::tensor::set_compute_threads)
  bool quiet = false;
  bool verbose = false;
  int64_t max_image_pixels = 0;  // set from io::kDefaultMaxImagePixels
};

// bind: declare the tool's options on `app`; body: do the work, return the exit code.
int run_main(int argc, char** argv, const ToolInfo& info, const std::function<void(CLI::App&)>& bind,
             const std::function<ExitCode()>& body);

// Access to the common options after parsing.
const CommonOptions& common_options();

// --compact: a tool's JSON result on one line instead of indented (em-eval, em-metrics, em-validate --json). The
// tools whose JSON is one line per object already (em-predict, em-train) take it with their own help text, so that
// a pipeline may pass --compact to every tool.
inline const char* const kCompactHelp = "One-line JSON instead of indented (collect results as JSONL)";
void bind_compact_flag(CLI::App& app, bool& compact, const std::string& help = kCompactHelp);
// The JSON text a tool prints for `value`: one line when `compact`, else indented by 2; ends with a newline.
std::string json_output(const io::Json& value, bool compact);

}  // namespace em::cli
