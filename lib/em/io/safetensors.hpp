// Reader and writer of the safetensors format (huggingface/safetensors): 8-byte LE header length, a JSON header of
// {name: {dtype, shape, data_offsets}} plus optional "__metadata__", then one contiguous LE byte buffer with no holes.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <torch/types.h>

namespace em::io {

// Tensors by name; std::map keeps names sorted, so iteration order is deterministic.
using TensorMap = std::map<std::string, torch::Tensor>;
using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  TensorMap tensors;
  SafetensorsMetadata metadata;  // the optional "__metadata__" string map (empty when absent)
};

// Reads and fully validates a .safetensors file; every tensor is a fresh contiguous CPU tensor (own memory).
// Throws em::Error naming the file (and the tensor) on any malformation: short file, bad header length, invalid JSON,
// unknown/unsupported dtype, shape x dtype size != byte range, offsets out of range, overlapping or leaving holes.
SafetensorsFile read_safetensors(const std::string& path);
TensorMap load_safetensors(const std::string& path);
// Same, from bytes already in memory (a request, a test); `what` names the source in errors.
SafetensorsFile read_safetensors_from_bytes(std::string_view bytes, const std::string& what);
TensorMap load_safetensors_from_bytes(std::string_view bytes, const std::string& what);

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

}  // namespace em::io
