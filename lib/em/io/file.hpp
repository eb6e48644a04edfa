// Whole-file IO with "-" meaning stdin/stdout, and atomic writes (temp file in the same folder, fsync, rename):
// a crash or kill at any moment leaves either the old file or the complete new one, never a torn one.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace em::io {

// Reads a whole file ("-" = stdin). Throws em::Error(path, reason) on failure.
std::string read_file(const std::string& path);
// Writes bytes to path atomically (creates parent folders). "-" writes to stdout.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// The same for a file written as consecutive parts (no concatenated copy in memory).
void write_file_atomic(const std::filesystem::path& path, const std::vector<std::string_view>& parts);
// Writes to stdout and flushes; throws if stdout is closed.
void write_stdout(std::string_view bytes);
// fsync a folder so a rename inside it is durable.
void sync_directory(const std::filesystem::path& dir);
// Atomically replaces folder `to` with the complete folder `from` (rename; an old `to` is removed after).
void replace_directory(const std::filesystem::path& from, const std::filesystem::path& to);
// Gives folder `to` (created) every regular file of folder `from` under the same name: hard links where the file
// system allows, copies otherwise. For a checkpoint that holds the very files of the model just written.
void link_or_copy_files(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace em::io
