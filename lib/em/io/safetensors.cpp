#include "em/io/safetensors.hpp"

#include "em/core/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <simdjson.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors buffers are little-endian; readers use the bytes as they are");

namespace em::io {
namespace {

// The reference implementation refuses headers over 100 MB; a larger value means a corrupt or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct FormatDtype {
  const char* name;
  size_t element_size;
};

// Every dtype the format defines.
constexpr FormatDtype kFormatDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U8", 1},
    {"BOOL", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}, {"C64", 8},
};

std::string format_dtypes() {
  std::string out;
  for (const auto& d : kFormatDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

using Entry = SafetensorsEntry;

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

uint64_t read_u64(const simdjson::dom::element& e, const std::string& where, const char* field) {
  uint64_t v = 0;
  if (e.get_uint64().get(v)) fail("{}: \"{}\" must hold non-negative integers, got {}", where, field,
                                  simdjson::minify(e));
  return v;
}

Entry parse_entry(std::string_view name, simdjson::dom::element value, const std::string& what) {
  Entry entry;
  entry.name = std::string(name);
  std::string where = fmt::format("{}: tensor \"{}\"", what, entry.name);
  simdjson::dom::object obj;
  if (value.get_object().get(obj))
    fail("{}: header entry must be an object {{\"dtype\", \"shape\", \"data_offsets\"}}, got {}", where,
         simdjson::minify(value));

  simdjson::dom::element field;
  std::string_view dtype;
  if (obj.at_key("dtype").get(field)) fail("{}: missing \"dtype\"", where);
  if (field.get_string().get(dtype)) fail("{}: \"dtype\" must be a string, got {}", where, simdjson::minify(field));
  entry.element_size = safetensors_element_size(dtype);
  if (entry.element_size == 0) fail("{}: unknown dtype \"{}\" (the format has: {})", where, dtype, format_dtypes());
  entry.dtype = std::string(dtype);

  simdjson::dom::array arr;
  if (obj.at_key("shape").get(field)) fail("{}: missing \"shape\"", where);
  if (field.get_array().get(arr)) fail("{}: \"shape\" must be an array, got {}", where, simdjson::minify(field));
  uint64_t numel = 1;
  for (simdjson::dom::element d : arr) {
    uint64_t dim = read_u64(d, where, "shape");
    if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
      fail("{}: shape {} is too large", where, simdjson::minify(field));
    entry.shape.push_back(static_cast<int64_t>(dim));
  }

  if (obj.at_key("data_offsets").get(field)) fail("{}: missing \"data_offsets\"", where);
  if (field.get_array().get(arr) || arr.size() != 2)
    fail("{}: \"data_offsets\" must be [begin, end], got {}", where, simdjson::minify(field));
  entry.begin = read_u64(arr.at(0).value(), where, "data_offsets");
  entry.end = read_u64(arr.at(1).value(), where, "data_offsets");
  if (entry.end < entry.begin)
    fail("{}: data_offsets [{}, {}] end before begin", where, entry.begin, entry.end);

  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(entry.element_size), &nbytes))
    fail("{}: shape {} is too large", where, shape_text(entry.shape));
  if (nbytes != entry.end - entry.begin)
    fail("{}: shape {} x {} needs {} bytes but data_offsets [{}, {}] hold {}", where, shape_text(entry.shape),
         entry.dtype, nbytes, entry.begin, entry.end, entry.end - entry.begin);
  return entry;
}

}  // namespace

size_t safetensors_element_size(std::string_view dtype) {
  for (const auto& d : kFormatDtypes)
    if (dtype == d.name) return d.element_size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const char* data, size_t size, const std::string& what) {
  if (size < 8) fail("{}: not a safetensors file ({} bytes; the 8-byte header length is missing)", what, size);
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);  // little-endian, checked at compile time
  if (header_len > kMaxHeaderBytes)
    fail("{}: not a safetensors file (header length {} exceeds the format's limit of {} bytes)", what, header_len,
         kMaxHeaderBytes);
  if (header_len > size - 8)
    fail("{}: truncated safetensors file (header length {} but only {} bytes follow)", what, header_len, size - 8);
  if (header_len == 0 || data[8] != '{')
    fail("{}: not a safetensors file (the header does not start with a JSON object)", what);

  simdjson::dom::parser parser;
  simdjson::padded_string header(data + 8, static_cast<size_t>(header_len));
  simdjson::dom::element root;
  if (auto err = parser.parse(header).get(root))
    fail("{}: invalid safetensors header JSON ({})", what, simdjson::error_message(err));
  simdjson::dom::object top;
  if (root.get_object().get(top)) fail("{}: safetensors header must be a JSON object", what);

  SafetensorsHeader out;
  std::vector<Entry>& entries = out.entries;
  std::set<std::string_view> seen;
  for (auto field : top) {
    if (!seen.insert(field.key).second) fail("{}: header names \"{}\" twice", what, field.key);
    if (field.key == "__metadata__") {
      simdjson::dom::object meta;
      if (field.value.get_object().get(meta))
        fail("{}: \"__metadata__\" must be an object of strings, got {}", what, simdjson::minify(field.value));
      for (auto m : meta) {
        std::string_view v;
        if (m.value.get_string().get(v))
          fail("{}: \"__metadata__\".\"{}\" must be a string, got {}", what, m.key, simdjson::minify(m.value));
        out.metadata[std::string(m.key)] = std::string(v);
      }
      continue;
    }
    entries.push_back(parse_entry(field.key, field.value, what));
  }

  // The byte buffer must be exactly covered: sorted by offset, each tensor starts where the previous one ended.
  const uint64_t buffer_size = size - 8 - header_len;
  std::vector<const Entry*> order;
  order.reserve(entries.size());
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->end > buffer_size)
      fail("{}: tensor \"{}\": data_offsets [{}, {}] run past the end of the {}-byte data buffer", what, e->name,
           e->begin, e->end, buffer_size);
    if (e->begin < expected)
      fail("{}: tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\" (which ends at {})", what, e->name,
           e->begin, e->end, previous->name, expected);
    if (e->begin > expected)
      fail("{}: tensor \"{}\": data_offsets [{}, {}] leave a hole of {} bytes after {}", what, e->name, e->begin,
           e->end, e->begin - expected, previous ? "tensor \"" + previous->name + "\"" : "the header");
    expected = e->end;
    previous = e;
  }
  if (expected != buffer_size)
    fail("{}: data buffer has {} bytes but the tensors cover {} ({} trailing bytes)", what, buffer_size, expected,
         buffer_size - expected);

  out.data_start = 8 + header_len;
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("{}: cannot open ({})", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("{}: cannot stat ({})", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("{}: is a folder, expected a .safetensors file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file (a FIFO, socket or device), expected a .safetensors file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    // Writable but private: LibTorch tensors over these pages may be written (copy-on-write), never the file.
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("{}: cannot map ({})", path, std::strerror(e));
    }
    data_ = static_cast<char*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

void MappedFile::release(size_t offset, size_t length) const {
  if (!data_ || length == 0 || offset >= size_) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t end = std::min(size_, offset + length);
  const size_t first = (offset + page - 1) / page * page;  // only whole pages inside the range
  const size_t last = end / page * page;
  if (last > first) ::madvise(data_ + first, last - first, MADV_DONTNEED);
}

}  // namespace em::io
