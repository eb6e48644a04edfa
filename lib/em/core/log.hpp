// Messages for people, on stderr, prefixed with the tool's name ("em-train: warning: ...").
// stdout is reserved for data (JSON/JSONL); nothing in here ever writes to it.
#pragma once
#include <string>

#include <fmt/format.h>

namespace em::log {

enum class Level { error = 0, warning = 1, info = 2, debug = 3 };

void set_program(std::string name);  // "em-train"
const std::string& program();
void set_level(Level level);         // --quiet sets warning, --verbose debug
Level level();
bool stderr_is_terminal();

// --log_format json (em-serve): every line is a JSON object {"time", "level", "program", "message"} instead of
// "PROGRAM: [level: ]message".
enum class Format { text, json };
void set_format(Format format);
Format format();
// Now, in UTC, as ISO 8601 with milliseconds: "2026-12-07T21:30:00.123Z" (json lines' "time").
std::string utc_timestamp();

void write(Level level, const std::string& message);
// A whole line as given (a JSON object the caller made), under the same lock as write().
void write_line(const std::string& line);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::warning) write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace em::log
