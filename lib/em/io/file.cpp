#include "em/io/file.hpp"

#include "em/core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <unistd.h>

namespace em::io {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  if (path == "-") {
    std::string data((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return data;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail_at(path, "is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(path, "cannot open ({})", std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail_at(path, "read error");
  return data;
}

void write_stdout(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    fail("stdout: write failed ({})", std::strerror(errno));
}

void sync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  if (path == "-") return write_stdout(bytes);
  write_file_atomic(path, std::vector<std::string_view>{bytes});
}

void write_file_atomic(const fs::path& path, const std::vector<std::string_view>& parts) {
  if (path == "-") {
    for (auto part : parts) write_stdout(part);
    return;
  }
  fs::path dir = path.parent_path();
  if (!dir.empty()) fs::create_directories(dir);
  std::random_device rd;
  fs::path tmp = path;
  tmp += fmt::format(".tmp-{}-{:x}", ::getpid(), rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_at(tmp.string(), "cannot create ({})", std::strerror(errno));
  for (std::string_view bytes : parts) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        fail_at(path.string(), "write failed ({})", std::strerror(e));
      }
      off += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail_at(path.string(), "write failed ({})", std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail_at(path.string(), "cannot rename into place ({})", std::strerror(e));
  }
  sync_directory(dir);
}

void replace_directory(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(to, ec)) {
    old = to;
    old += ".old";
    fs::remove_all(old, ec);
    fs::rename(to, old, ec);
    if (ec) fail_at(to.string(), "cannot move aside ({})", ec.message());
  }
  fs::rename(from, to, ec);
  if (ec) fail_at(to.string(), "cannot rename into place ({})", ec.message());
  sync_directory(to.parent_path());
  if (!old.empty()) fs::remove_all(old, ec);
}

void link_or_copy_files(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) fail_at(to.string(), "cannot create ({})", ec.message());
  for (const auto& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    const fs::path target = to / entry.path().filename();
    fs::create_hard_link(entry.path(), target, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing, ec);
      if (ec) fail_at(entry.path().string(), "cannot copy to {} ({})", target.string(), ec.message());
    }
  }
}

}  // namespace em::io
