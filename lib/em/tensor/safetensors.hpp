// Tensors in and out of safetensors files: zero-copy reading over a file mapping, the exact writer, and a mapped
// reader for loaders that copy each tensor once into its destination (io/safetensors.hpp validates the header).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <torch/types.h>

#include "em/io/safetensors.hpp"

namespace em::tensor {

// Tensors by name; std::map keeps names sorted, so iteration order is deterministic.
using TensorMap = std::map<std::string, torch::Tensor>;
using io::SafetensorsMetadata;

struct SafetensorsFile {
  TensorMap tensors;
  SafetensorsMetadata metadata;  // the optional "__metadata__" string map (empty when absent)
};

// Reads and fully validates a .safetensors file. The tensors are contiguous CPU views of the file's copy-on-write
// mapping (no copy; the mapping lives as long as any of them): writing into one changes that tensor, never the file.
// Throws em::Error naming the file (and the tensor) on any malformation (see io::parse_safetensors_header) and for
// dtypes LibTorch lacks. "-" reads stdin (into memory).
SafetensorsFile read_safetensors(const std::string& path);
TensorMap load_safetensors(const std::string& path);
// Same, from bytes already in memory (a request, a test); the tensors are copies. `what` names the source.
SafetensorsFile read_safetensors_from_bytes(std::string_view bytes, const std::string& what);
TensorMap load_safetensors_from_bytes(std::string_view bytes, const std::string& what);

// A mapped file whose tensors a loader copies one by one into their destination and then releases, so that the
// file's pages never all count in memory at once next to the destination (cold model loading).
class MappedSafetensors {
 public:
  explicit MappedSafetensors(const std::string& path);
  const std::string& path() const { return file_->path(); }
  const std::vector<io::SafetensorsEntry>& entries() const { return header_.entries; }
  const SafetensorsMetadata& metadata() const { return header_.metadata; }
  // The entry's LibTorch dtype (validated on construction).
  torch::ScalarType dtype(const io::SafetensorsEntry& entry) const;
  // A view of the entry's bytes (valid while this object lives; a copy when the bytes are misaligned).
  torch::Tensor view(const io::SafetensorsEntry& entry) const;
  // Done with this entry: its pages leave the process's memory (views of it must no longer be read).
  void release(const io::SafetensorsEntry& entry) const;

 private:
  std::shared_ptr<io::MappedFile> file_;
  io::SafetensorsHeader header_;
};

// Serialises tensors (any device, layout or strides: written as contiguous CPU, little-endian) in the exact format,
// ordered by element size (largest first) then name so that every tensor starts aligned to its element size, as the
// reference writer does. Throws on a name that is empty or "__metadata__" or a dtype the format lacks.
std::string safetensors_to_bytes(const TensorMap& tensors,
                                 const SafetensorsMetadata& metadata = {{"format", "pt"}},
                                 const std::string& what = "safetensors");
// Writes the file atomically (temp + fsync + rename): readers see the old file or the complete new one.
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const SafetensorsMetadata& metadata = {{"format", "pt"}});

// The format's dtype name of a torch dtype ("F32", "BF16", ...); throws for dtypes the format lacks (complex, qint).
std::string safetensors_dtype_name(torch::ScalarType dtype);

}  // namespace em::tensor
