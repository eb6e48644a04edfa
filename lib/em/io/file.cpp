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
#include <sys/stat.h>
#include <cstdlib>
#include <unistd.h>

namespace em::io {
namespace fs = std::filesystem;

namespace {

std::string size_text(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1 << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  return fmt::format("{} bytes", bytes);
}

[[noreturn]] void too_large(const std::string& path, uint64_t limit) {
  fail_at(path, "larger than the {} emkit reads from one file (EM_MAX_FILE_BYTES raises the limit)", size_text(limit));
}

// Stat before read, on the opened file itself: a FIFO, a device (a link to /dev/zero or /dev/random named .png)
// or a socket would block or never end; O_NONBLOCK keeps opening a FIFO from waiting for a writer.
int open_regular_file(const std::string& path, uint64_t max_bytes, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail_at(path, "cannot open ({})", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail_at(path, "cannot stat ({})", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    if (S_ISDIR(st.st_mode)) fail_at(path, "is a folder, expected a file");
    fail_at(path, "is not a regular file (a {}); emkit reads only regular files",
            S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" : "device");
  }
  *size = static_cast<uint64_t>(st.st_size);
  if (*size > max_bytes) {
    ::close(fd);
    too_large(path, max_bytes);
  }
  return fd;
}

}  // namespace

void check_regular_file(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  ::close(open_regular_file(path, max_bytes == 0 ? max_file_bytes() : max_bytes, &size));
}

uint64_t max_file_bytes() {
  static const uint64_t limit = [] {
    const char* env = std::getenv("EM_MAX_FILE_BYTES");
    if (!env || !*env) return kDefaultMaxFileBytes;
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || env[0] == '-')
      usage_fail("EM_MAX_FILE_BYTES={}: expected a whole number of bytes > 0", env);
    return static_cast<uint64_t>(v);
  }();
  return limit;
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  if (max_bytes == 0) max_bytes = max_file_bytes();
  if (path == "-") {
    std::string data;
    char buf[1 << 16];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
      data.append(buf, static_cast<size_t>(std::cin.gcount()));
      if (data.size() > max_bytes) too_large("stdin", max_bytes);
    }
    if (std::cin.bad()) fail("stdin: read error");
    return data;
  }
  uint64_t size = 0;
  const int fd = open_regular_file(path, max_bytes, &size);
  std::string data(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      fail_at(path, "read error ({})", std::strerror(e));
    }
    if (n == 0) break;  // truncated while reading: what is there
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

std::string outside_reason(const fs::path& root, const std::string& rel) {
  const fs::path p(rel);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
    return fmt::format("\"{}\" is an absolute path; entries are relative to {}", rel, root.string());
  for (const auto& part : p.lexically_normal())
    if (part == "..") return fmt::format("\"{}\" leaves {} (..)", rel, root.string());
  std::error_code ec;
  const fs::path full = root / p;
  if (!fs::exists(fs::symlink_status(full, ec))) return "";  // missing: the reader says so
  const fs::path real_root = fs::weakly_canonical(root, ec);
  if (ec) return "";
  const fs::path real = fs::weakly_canonical(full, ec);
  if (ec) return "";
  auto r = real_root.begin(), f = real.begin();
  for (; r != real_root.end() && !r->empty(); ++r, ++f)
    if (f == real.end() || *f != *r)
      return fmt::format("\"{}\" is a link to {}, outside {}; copy the file in, or link the whole folder instead",
                         rel, real.string(), root.string());
  return "";
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
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
    // Hidden and .tmp-: a kill before the removal below leaves something a run directory's cleanup removes.
    old = to.parent_path() / (".tmp-old-" + to.filename().string());
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
