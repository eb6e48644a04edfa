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

#include "em/io/json_dom.hpp"

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

uint64_t read_u64(const simdjson::dom::element& e, const std::string& what, const std::string& where,
                  const char* field) {
  uint64_t v = 0;
  if (e.get_uint64().get(v))
    fail_at(what, "{}: \"{}\" must hold non-negative integers, got {}", where, field, simdjson::minify(e));
  return v;
}

Entry parse_entry(std::string_view name, simdjson::dom::element value, const std::string& what) {
  Entry entry;
  entry.name = std::string(name);
  const std::string where = fmt::format("tensor \"{}\"", entry.name);  // errors: "FILE: tensor \"NAME\": ..."
  simdjson::dom::object obj;
  if (value.get_object().get(obj))
    fail_at(what, "{}: header entry must be an object {{\"dtype\", \"shape\", \"data_offsets\"}}, got {}", where,
            simdjson::minify(value));

  simdjson::dom::element field;
  std::string_view dtype;
  if (obj.at_key("dtype").get(field)) fail_at(what, "{}: missing \"dtype\"", where);
  if (field.get_string().get(dtype))
    fail_at(what, "{}: \"dtype\" must be a string, got {}", where, simdjson::minify(field));
  entry.element_size = safetensors_element_size(dtype);
  if (entry.element_size == 0)
    fail_at(what, "{}: unknown dtype \"{}\" (the format has: {})", where, dtype, format_dtypes());
  entry.dtype = std::string(dtype);

  simdjson::dom::array arr;
  if (obj.at_key("shape").get(field)) fail_at(what, "{}: missing \"shape\"", where);
  if (field.get_array().get(arr))
    fail_at(what, "{}: \"shape\" must be an array, got {}", where, simdjson::minify(field));
  uint64_t numel = 1;
  for (simdjson::dom::element d : arr) {
    uint64_t dim = read_u64(d, what, where, "shape");
    if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
      fail_at(what, "{}: shape {} is too large", where, simdjson::minify(field));
    entry.shape.push_back(static_cast<int64_t>(dim));
  }

  if (obj.at_key("data_offsets").get(field)) fail_at(what, "{}: missing \"data_offsets\"", where);
  if (field.get_array().get(arr) || arr.size() != 2)
    fail_at(what, "{}: \"data_offsets\" must be [begin, end], got {}", where, simdjson::minify(field));
  entry.begin = read_u64(arr.at(0).value(), what, where, "data_offsets");
  entry.end = read_u64(arr.at(1).value(), what, where, "data_offsets");
  if (entry.end < entry.begin)
    fail_at(what, "{}: data_offsets [{}, {}] end before begin", where, entry.begin, entry.end);

  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(entry.element_size), &nbytes))
    fail_at(what, "{}: shape {} is too large", where, shape_text(entry.shape));
  if (nbytes != entry.end - entry.begin)
    fail_at(what, "{}: shape {} x {} needs {} bytes but data_offsets [{}, {}] hold {}", where,
            shape_text(entry.shape), entry.dtype, nbytes, entry.begin, entry.end, entry.end - entry.begin);
  return entry;
}

SafetensorsMetadata parse_metadata(simdjson::dom::element value, const std::string& what) {
  simdjson::dom::object meta;
  if (value.get_object().get(meta))
    fail_at(what, "\"__metadata__\" must be an object of strings, got {}", simdjson::minify(value));
  SafetensorsMetadata out;
  for (auto m : meta) {
    std::string_view v;
    if (m.value.get_string().get(v))
      fail_at(what, "\"__metadata__\".\"{}\" must be a string, got {}", m.key, simdjson::minify(m.value));
    out[std::string(m.key)] = std::string(v);
  }
  return out;
}

// The byte buffer must be exactly covered: sorted by offset, each tensor starts where the previous one ended.
void check_coverage(const std::vector<Entry>& entries, uint64_t buffer_size, const std::string& what) {
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
      fail_at(what, "tensor \"{}\": data_offsets [{}, {}] run past the end of the {}-byte data buffer", e->name,
              e->begin, e->end, buffer_size);
    if (e->begin < expected)
      fail_at(what, "tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\" (which ends at {})", e->name,
              e->begin, e->end, previous->name, expected);
    if (e->begin > expected)
      fail_at(what, "tensor \"{}\": data_offsets [{}, {}] leave a hole of {} bytes after {}", e->name, e->begin,
              e->end, e->begin - expected, previous ? "tensor \"" + previous->name + "\"" : "the header");
    expected = e->end;
    previous = e;
  }
  if (expected != buffer_size)
    fail_at(what, "data buffer has {} bytes but the tensors cover {} ({} trailing bytes)", buffer_size, expected,
            buffer_size - expected);
}

}  // namespace

size_t safetensors_element_size(std::string_view dtype) {
  for (const auto& d : kFormatDtypes)
    if (dtype == d.name) return d.element_size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const char* data, size_t size, const std::string& what) {
  if (size < 8) fail_at(what, "not a safetensors file ({} bytes; the 8-byte header length is missing)", size);
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);  // little-endian, checked at compile time
  if (header_len > kMaxHeaderBytes)
    fail_at(what, "not a safetensors file (header length {} exceeds the format's limit of {} bytes)", header_len,
            kMaxHeaderBytes);
  if (header_len > size - 8)
    fail_at(what, "truncated safetensors file (header length {} but only {} bytes follow)", header_len, size - 8);
  if (header_len == 0 || data[8] != '{')
    fail_at(what, "not a safetensors file (the header does not start with a JSON object)");

  simdjson::dom::parser parser;
  simdjson::padded_string header(data + 8, static_cast<size_t>(header_len));
  simdjson::dom::element root;
  if (auto err = parser.parse(header).get(root))
    fail_at(what, "invalid safetensors header JSON ({})", simdjson::error_message(err));
  check_json_rules(root, what + ": safetensors header");
  simdjson::dom::object top;
  if (root.get_object().get(top)) fail_at(what, "safetensors header must be a JSON object");

  SafetensorsHeader out;
  std::vector<Entry>& entries = out.entries;
  std::set<std::string_view> seen;
  for (auto field : top) {
    if (!seen.insert(field.key).second) fail_at(what, "header names \"{}\" twice", field.key);
    if (field.key == "__metadata__") {
      out.metadata = parse_metadata(field.value, what);
      continue;
    }
    entries.push_back(parse_entry(field.key, field.value, what));
  }

  check_coverage(entries, size - 8 - header_len, what);
  out.data_start = 8 + header_len;
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail_at(path, "cannot open ({})", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail_at(path, "cannot stat ({})", std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail_at(path, "is a folder, expected a .safetensors file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_at(path, "not a regular file (a FIFO, socket or device), expected a .safetensors file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    // Writable but private: LibTorch tensors over these pages may be written (copy-on-write), never the file.
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail_at(path, "cannot map ({})", std::strerror(e));
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
