#include "em/core/log.hpp"

#include <cstdio>
#include <mutex>
#include <unistd.h>

namespace em::log {
namespace {
std::string g_program = "emkit";
Level g_level = Level::info;
std::mutex g_mutex;
}  // namespace

void set_program(std::string name) { g_program = std::move(name); }
const std::string& program() { return g_program; }
void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void write(Level level, const std::string& message) {
  const char* tag = level == Level::error ? "error: " : level == Level::warning ? "warning: " : "";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s: %s%s\n", g_program.c_str(), tag, message.c_str());
  std::fflush(stderr);
}

}  // namespace em::log
