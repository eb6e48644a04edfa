#include "common/torch_cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <c10/util/Exception.h>

#include "em/core/allocator.hpp"
#include "em/core/log.hpp"
#include "em/tensor/threads.hpp"

namespace em::cli {

int run_torch_main(int argc, char** argv, ToolInfo info, const std::function<void(CLI::App&)>& bind,
                   const std::function<ExitCode()>& body) {
  info.threads_help = "Compute threads for LibTorch (0 = every CPU this process may use, or OMP_NUM_THREADS when set)";
  const int code = run_main(argc, argv, info, bind, [&]() -> ExitCode {
    tensor::set_compute_threads(common_options().threads);
    if (info.keep_freed_memory && core::keep_freed_memory())
      log::debug("malloc: freed memory kept for the next forward pass (MALLOC_*_ variables turn this off)");
    try {
      return body();
    } catch (const c10::Error& e) {
      throw Error(e.what_without_backtrace());
    }
  });
  // Everything the tool wrote is closed by now (the body's objects are gone); only LibTorch's registries remain,
  // whose teardown costs a cold em-predict ~15% of its time. Flush and leave.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace em::cli
