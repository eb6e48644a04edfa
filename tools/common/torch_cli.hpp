// run_main() for the tools that run models (em-train, em-eval, em-predict, em-serve): --threads sets LibTorch's
// compute threads, LibTorch's own errors (c10::Error) print without their C++ backtrace, and the process ends
// without running LibTorch's static destructors (tens of milliseconds of operator deregistration per process).
#pragma once
#include "common/cli.hpp"

namespace em::cli {

int run_torch_main(int argc, char** argv, ToolInfo info, const std::function<void(CLI::App&)>& bind,
                   const std::function<ExitCode()>& body);

}  // namespace em::cli
