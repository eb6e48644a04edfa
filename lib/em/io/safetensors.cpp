#include "em/io/safetensors.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <fmt/ranges.h>
#include <simdjson.h>
#include <torch/torch.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors buffers are little-endian; this reader copies bytes as they are");

namespace em::io {
namespace {

// The reference implementation refuses headers over 100 MB; a larger value means a corrupt or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  const char* name;
  std::optional<torch::ScalarType> torch_type;  // nullopt: valid in the format, absent from LibTorch 1.13
  size_t element_size;
};

const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
      {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
      {"BOOL", torch::kBool, 1},   {"U64", std::nullopt, 8},    {"U32", std::nullopt, 4},
      {"U16", std::nullopt, 2},    {"F8_E4M3", std::nullopt, 1}, {"F8_E5M2", std::nullopt, 1},
      {"F8_E8M0", std::nullopt, 1}, {"C64", std::nullopt, 8},
  };
  return table;
}

const DtypeInfo* find_dtype(std::string_view name) {
  for (const auto& d : dtype_table())
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_of(torch::ScalarType type) {
  for (const auto& d : dtype_table())
    if (d.torch_type && *d.torch_type == type) return &d;
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const auto& d : dtype_table()) {
    if (!d.torch_type) continue;
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

// One tensor's header entry, validated on its own; the buffer layout is checked once all are known.
struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

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
  entry.dtype = find_dtype(dtype);
  if (!entry.dtype) fail("{}: unknown dtype \"{}\" (known: {})", where, dtype, known_dtypes());
  if (!entry.dtype->torch_type)
    fail("{}: dtype \"{}\" is valid safetensors but LibTorch 1.13 has no such type (supported: {})", where, dtype,
         known_dtypes());

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
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(entry.dtype->element_size), &nbytes))
    fail("{}: shape {} is too large", where, shape_text(entry.shape));
  if (nbytes != entry.end - entry.begin)
    fail("{}: shape {} x {} needs {} bytes but data_offsets [{}, {}] hold {}", where, shape_text(entry.shape),
         entry.dtype->name, nbytes, entry.begin, entry.end, entry.end - entry.begin);
  return entry;
}

SafetensorsFile parse_safetensors(const char* data, size_t size, const std::string& what) {
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

  SafetensorsFile out;
  std::vector<Entry> entries;
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

  const char* buffer = data + 8 + header_len;
  for (const auto& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(*e.dtype->torch_type));
    const uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0) {
      if (e.dtype->torch_type == torch::kBool) {
        const auto* p = reinterpret_cast<const unsigned char*>(buffer + e.begin);
        if (!std::all_of(p, p + nbytes, [](unsigned char c) { return c <= 1; }))
          fail("{}: tensor \"{}\": BOOL data holds bytes other than 0 and 1", what, e.name);
      }
      std::memcpy(t.data_ptr(), buffer + e.begin, nbytes);
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

// Read-only mapping of a whole file: the page cache is copied once, straight into each tensor's memory.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd);
        fail("{}: cannot map ({})", path, std::strerror(e));
      }
      data_ = static_cast<const char*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_ ? data_ : ""; }
  size_t size() const { return size_; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  if (const DtypeInfo* d = dtype_of(dtype)) return d->name;
  fail("safetensors: dtype {} has no safetensors name (supported: {})", c10::toString(dtype), known_dtypes());
}

SafetensorsFile read_safetensors_from_bytes(std::string_view bytes, const std::string& what) {
  return parse_safetensors(bytes.data(), bytes.size(), what);
}

TensorMap load_safetensors_from_bytes(std::string_view bytes, const std::string& what) {
  return read_safetensors_from_bytes(bytes, what).tensors;
}

SafetensorsFile read_safetensors(const std::string& path) {
  if (path == "-") return read_safetensors_from_bytes(read_file(path), "stdin");
  MappedFile file(path);
  return parse_safetensors(file.data(), file.size(), path);
}

TensorMap load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

namespace {

// A safetensors file as parts: the 8-byte header length + the padded JSON header, then each tensor's bytes in file
// order (contiguous CPU tensors; no copy when the caller's tensors already are).
struct SafetensorsLayout {
  std::string head;
  std::vector<torch::Tensor> data;
  uint64_t size() const {
    uint64_t n = head.size();
    for (const auto& t : data) n += t.nbytes();
    return n;
  }
};

SafetensorsLayout layout_safetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata,
                                     const std::string& what) {
  struct Item {
    const std::string* name;
    torch::Tensor data;  // contiguous CPU
    size_t element_size;
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      fail("{}: invalid tensor name \"{}\" (empty and \"__metadata__\" are reserved)", what, name);
    if (!tensor.defined()) fail("{}: tensor \"{}\" is undefined", what, name);
    if (!dtype_of(tensor.scalar_type()))
      fail("{}: tensor \"{}\": dtype {} has no safetensors name (supported: {})", what, name,
           c10::toString(tensor.scalar_type()), known_dtypes());
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    items.push_back({&name, std::move(t), static_cast<size_t>(tensor.element_size())});
  }
  // Largest elements first keeps every tensor aligned to its element size (the header is padded to 8).
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.element_size > b.element_size; });

  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    const uint64_t nbytes = item.data.nbytes();
    header[*item.name] = Json{{"dtype", safetensors_dtype_name(item.data.scalar_type())},
                              {"shape", item.data.sizes().vec()},
                              {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_text = dump_json(header);
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  SafetensorsLayout layout;
  const uint64_t header_len = header_text.size();
  layout.head.assign(reinterpret_cast<const char*>(&header_len), 8);
  layout.head += header_text;
  for (auto& item : items) layout.data.push_back(std::move(item.data));
  return layout;
}

}  // namespace

std::string safetensors_to_bytes(const TensorMap& tensors, const SafetensorsMetadata& metadata,
                                 const std::string& what) {
  SafetensorsLayout layout = layout_safetensors(tensors, metadata, what);
  std::string out;
  out.reserve(layout.size());
  out += layout.head;
  for (const auto& t : layout.data) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const SafetensorsMetadata& metadata) {
  // Streamed from the tensors' memory: a checkpoint of ResNet-50 + AdamW is ~270 MB, not worth a second copy.
  SafetensorsLayout layout = layout_safetensors(tensors, metadata, path.string());
  std::vector<std::string_view> parts{layout.head};
  for (const auto& t : layout.data) parts.emplace_back(static_cast<const char*>(t.data_ptr()), t.nbytes());
  write_file_atomic(path, parts);
}

}  // namespace em::io
