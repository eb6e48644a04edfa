#include "em/core/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace em::log {
namespace {
std::string g_program = "emkit";
Level g_level = Level::info;
Format g_format = Format::text;
std::mutex g_mutex;

// A JSON string literal of UTF-8 text: quotes, backslashes and control characters escaped.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

void set_format(Format format) { g_format = format; }
Format format() { return g_format; }

void set_program(std::string name) { g_program = std::move(name); }
const std::string& program() { return g_program; }
void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void write_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void write(Level level, const std::string& message) {
  if (g_format == Format::json) {
    const char* name = level == Level::error ? "error" : level == Level::warning ? "warning"
                       : level == Level::info ? "info" : "debug";
    return write_line(fmt::format("{{\"time\":\"{}\",\"level\":\"{}\",\"program\":{},\"message\":{}}}", utc_timestamp(),
                                  name, json_string(g_program), json_string(message)));
  }
  const char* tag = level == Level::error ? "error: " : level == Level::warning ? "warning: " : "";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s: %s%s\n", g_program.c_str(), tag, message.c_str());
  std::fflush(stderr);
}

}  // namespace em::log
