#include "common/cli.hpp"

#include "em/core/log.hpp"

#include <cstdio>

namespace em::cli {
namespace {
CommonOptions g_common;

std::string footer(const ToolInfo& info) {
  std::string text = "\nUsage:\n  " + info.usage + "\n";
  if (!info.example.empty()) text += "\nExample:\n  " + info.example + "\n";
  text += "\nExit codes: 0 success, 1 data or runtime error, 2 usage error, 130 interrupted.\n";
  if (!info.see_also.empty()) text += "\nSee also: " + info.see_also + "\n";
  return text;
}
}  // namespace

const CommonOptions& common_options() { return g_common; }

int run_main(int argc, char** argv, const ToolInfo& info, const std::function<void(CLI::App&)>& bind,
             const std::function<ExitCode()>& body) {
  log::set_program(info.name);
  CLI::App app(info.purpose, info.name);
  app.footer(footer(info));
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", std::string(info.name) + " (emkit) " + EM_VERSION);
  if (!info.threads_help.empty())
    app.add_option("--threads", g_common.threads, info.threads_help)->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", g_common.quiet, "Only warnings and errors on stderr");
  app.add_flag("-v,--verbose", g_common.verbose, "Debug messages on stderr");
  try {
    bind(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      app.exit(e);
      return 0;
    }
    log::error("{}", e.what());
    std::fprintf(stderr, "Run '%s --help' for usage.\n", info.name.c_str());
    return static_cast<int>(ExitCode::usage);
  } catch (const Error& e) {
    log::error("{}", e.what());
    return static_cast<int>(e.code());
  }
  if (g_common.quiet) log::set_level(log::Level::warning);
  if (g_common.verbose) log::set_level(log::Level::debug);
  try {
    return static_cast<int>(body());
  } catch (const Error& e) {
    log::error("{}", e.what());
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    return static_cast<int>(ExitCode::failure);
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    return static_cast<int>(ExitCode::failure);
  }
}

}  // namespace em::cli
