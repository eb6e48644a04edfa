#include "em/tensor/safetensors.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::tensor {
namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType torch_type;
};

// The format's dtypes that LibTorch 1.13 has (U16/U32/U64, F8_* and C64 are valid safetensors but not here).
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

std::optional<torch::ScalarType> torch_type_of(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.torch_type;
  return std::nullopt;
}

const DtypeInfo* dtype_of(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.torch_type == type) return &d;
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

torch::ScalarType checked_type(const io::SafetensorsEntry& e, const std::string& what) {
  auto t = torch_type_of(e.dtype);
  if (!t)
    fail("{}: tensor \"{}\": dtype \"{}\" is valid safetensors but LibTorch 1.13 has no such type (supported: {})",
         what, e.name, e.dtype, known_dtypes());
  return *t;
}

void check_bool_bytes(const char* p, uint64_t n, const io::SafetensorsEntry& e, const std::string& what) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (!std::all_of(u, u + n, [](unsigned char c) { return c <= 1; }))
    fail("{}: tensor \"{}\": BOOL data holds bytes other than 0 and 1", what, e.name);
}

// A fresh tensor holding a copy of the entry's bytes.
torch::Tensor copy_of(const char* buffer, const io::SafetensorsEntry& e, torch::ScalarType type) {
  torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(type));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
  return t;
}

// A view of the entry inside `file`'s mapping that keeps the mapping alive; a copy when misaligned for its dtype.
torch::Tensor view_of(const std::shared_ptr<io::MappedFile>& file, uint64_t data_start, const io::SafetensorsEntry& e,
                      torch::ScalarType type) {
  const char* buffer = file->data() + data_start;
  char* p = const_cast<char*>(buffer + e.begin);
  if (e.end == e.begin || reinterpret_cast<uintptr_t>(p) % e.element_size != 0) return copy_of(buffer, e, type);
  return torch::from_blob(p, e.shape, [keep = file](void*) {}, torch::TensorOptions().dtype(type));
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  if (const DtypeInfo* d = dtype_of(dtype)) return d->name;
  fail("safetensors: dtype {} has no safetensors name (supported: {})", c10::toString(dtype), known_dtypes());
}

SafetensorsFile read_safetensors_from_bytes(std::string_view bytes, const std::string& what) {
  io::SafetensorsHeader header = io::parse_safetensors_header(bytes.data(), bytes.size(), what);
  const char* buffer = bytes.data() + header.data_start;
  SafetensorsFile out;
  out.metadata = std::move(header.metadata);
  for (const auto& e : header.entries) {
    const torch::ScalarType type = checked_type(e, what);
    if (type == torch::kBool) check_bool_bytes(buffer + e.begin, e.end - e.begin, e, what);
    out.tensors.emplace(e.name, copy_of(buffer, e, type));
  }
  return out;
}

TensorMap load_safetensors_from_bytes(std::string_view bytes, const std::string& what) {
  return read_safetensors_from_bytes(bytes, what).tensors;
}

SafetensorsFile read_safetensors(const std::string& path) {
  if (path == "-") return read_safetensors_from_bytes(io::read_file(path), "stdin");
  MappedSafetensors mapped(path);
  SafetensorsFile out;
  out.metadata = mapped.metadata();
  for (const auto& e : mapped.entries()) out.tensors.emplace(e.name, mapped.view(e));
  return out;
}

TensorMap load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

MappedSafetensors::MappedSafetensors(const std::string& path)
    : file_(std::make_shared<io::MappedFile>(path)),
      header_(io::parse_safetensors_header(file_->data(), file_->size(), path)) {
  // Every dtype known to LibTorch and every BOOL byte 0 or 1, before any tensor is handed out.
  const char* buffer = file_->data() + header_.data_start;
  for (const auto& e : header_.entries)
    if (checked_type(e, path) == torch::kBool) check_bool_bytes(buffer + e.begin, e.end - e.begin, e, path);
}

torch::ScalarType MappedSafetensors::dtype(const io::SafetensorsEntry& entry) const {
  return checked_type(entry, path());
}

torch::Tensor MappedSafetensors::view(const io::SafetensorsEntry& entry) const {
  return view_of(file_, header_.data_start, entry, dtype(entry));
}

void MappedSafetensors::release(const io::SafetensorsEntry& entry) const {
  file_->release(header_.data_start + entry.begin, entry.end - entry.begin);
}

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

  io::Json header = io::Json::object();
  if (!metadata.empty()) {
    io::Json meta = io::Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    const uint64_t nbytes = item.data.nbytes();
    header[*item.name] = io::Json{{"dtype", safetensors_dtype_name(item.data.scalar_type())},
                              {"shape", item.data.sizes().vec()},
                              {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_text = io::dump_json(header);
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
  io::write_file_atomic(path, parts);
}

}  // namespace em::tensor
