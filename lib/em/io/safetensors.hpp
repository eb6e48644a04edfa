// The safetensors format (huggingface/safetensors) without tensors: 8-byte LE header length, a JSON header of
// {name: {dtype, shape, data_offsets}} plus optional "__metadata__", then one contiguous LE byte buffer with no holes.
// This parses and fully validates the header and maps files; tensor/safetensors.hpp makes tensors of the entries.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace em::io {

using SafetensorsMetadata = std::map<std::string, std::string>;

// One tensor of the header: its format dtype name ("F32", "BF16", ...), element size, shape and byte range in the
// data buffer (offsets relative to the buffer, which starts at SafetensorsHeader::data_start of the file).
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  size_t element_size = 0;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in header order
  SafetensorsMetadata metadata;           // the optional "__metadata__" string map (empty when absent)
  uint64_t data_start = 0;                // 8 + header length: where the data buffer begins in the file
};

// Parses and validates the header of a whole file's bytes: short file, bad header length (> 100 MB, as the
// reference refuses), invalid JSON, unknown dtype, shape x dtype size != byte range, shape products that overflow,
// offsets out of range, overlaps, holes or trailing bytes, a name given twice. Throws em::Error naming `what`
// (and the tensor). Dtypes valid in the format but unknown to LibTorch pass here; the tensor layer refuses them.
SafetensorsHeader parse_safetensors_header(const char* data, size_t size, const std::string& what);

// The element size of a format dtype name, or 0 for a name the format does not have.
size_t safetensors_element_size(std::string_view dtype);

// A whole file mapped copy-on-write (MAP_PRIVATE): pages are read on first touch, writes never reach the file.
// Refuses folders and anything that is not a regular file (a FIFO or a device would hang or never end).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_ ? data_ : ""; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the resident pages that lie wholly inside [offset, offset + length): a part the reader is done with no
  // longer counts in the process's memory (it is read again from the file if touched).
  void release(size_t offset, size_t length) const;

 private:
  std::string path_;
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace em::io
