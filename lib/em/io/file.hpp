// Whole-file IO with "-" meaning stdin/stdout, and atomic writes (temp file in the same folder, fsync, rename):
// a crash or kill at any moment leaves either the old file or the complete new one, never a torn one.
#pragma once
#include <filesystem>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace em::io {

// The most read_file reads from one file by default: 4 GiB (COCO's largest annotation file is ~0.5 GB), or the
// environment's EM_MAX_FILE_BYTES.
constexpr uint64_t kDefaultMaxFileBytes = uint64_t{4} << 30;
uint64_t max_file_bytes();
// Reads a whole regular file ("-" = stdin) of at most max_bytes (0 = max_file_bytes()). Throws em::Error(path,
// reason) on failure, for a folder, a FIFO, a device or a socket (checked before reading: a link to /dev/zero named
// .png must not hang or fill memory), and for a larger file (before reading it).
std::string read_file(const std::string& path, uint64_t max_bytes = 0);
// read_file's checks without reading, for readers that load the file themselves.
void check_regular_file(const std::string& path, uint64_t max_bytes = 0);
// Why `rel`, a file listed by a dataset or model folder relative to `root`, is not inside root; "" when it is.
// Refused: an absolute path, ".." that leaves root, and (where the file exists) a symbolic link, of the file or of
// a folder on the way, whose target lies outside root (root itself may be a link: it is resolved first).
std::string outside_reason(const std::filesystem::path& root, const std::string& rel);
// Whether `name` (a file or folder name, a label) is valid UTF-8: JSON and the HF config files hold only UTF-8.
bool is_valid_utf8(std::string_view name);

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
