#include "em/tensor/torch_pickle.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/torch_pickle.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include <torch/torch.h>

namespace em::tensor {
namespace {

torch::ScalarType scalar_type_of(io::TorchDtype dtype) {
  switch (dtype) {
    case io::TorchDtype::float64: return torch::kFloat64;
    case io::TorchDtype::float32: return torch::kFloat32;
    case io::TorchDtype::float16: return torch::kFloat16;
    case io::TorchDtype::bfloat16: return torch::kBFloat16;
    case io::TorchDtype::int64: return torch::kInt64;
    case io::TorchDtype::int32: return torch::kInt32;
    case io::TorchDtype::int16: return torch::kInt16;
    case io::TorchDtype::int8: return torch::kInt8;
    case io::TorchDtype::uint8: return torch::kUInt8;
    case io::TorchDtype::boolean: return torch::kBool;
  }
  return torch::kFloat32;
}

TorchCheckpoint build(const io::TorchArchive& archive) {
  const io::TorchPickle& pickle = archive.pickle();
  io::TorchStateDict state = io::torch_state_dict(pickle, archive.what());
  TorchCheckpoint out;
  out.unwrapped = std::move(state.unwrapped);
  out.stripped_module = state.stripped_module;

  // Each storage is read once, its tensors made, then it is dropped: memory is the result plus one storage.
  std::map<size_t, std::vector<size_t>> by_storage;  // storage -> positions in state.tensors
  for (size_t i = 0; i < state.tensors.size(); ++i)
    by_storage[pickle.tensors[state.tensors[i].second].storage].push_back(i);
  for (const auto& [storage_index, users] : by_storage) {
    const io::TorchStorageRef& ref = pickle.storages[storage_index];
    const torch::ScalarType type = scalar_type_of(ref.dtype);
    torch::Tensor storage = torch::empty({static_cast<int64_t>(ref.numel)}, torch::TensorOptions().dtype(type));
    archive.read_storage(storage_index, storage.data_ptr());
    if (type == torch::kBool) {
      const auto* bytes = static_cast<const unsigned char*>(storage.data_ptr());
      if (!std::all_of(bytes, bytes + ref.numel, [](unsigned char c) { return c <= 1; }))
        fail_at(archive.what(), "storage \"{}\" (bool) holds bytes other than 0 and 1", ref.key);
    }
    for (size_t i : users) {
      const auto& [name, tensor_index] = state.tensors[i];
      const io::TorchTensorRef& t = pickle.tensors[tensor_index];
      torch::Tensor value;
      if (t.numel() == 0) {
        value = torch::empty(t.shape, torch::TensorOptions().dtype(type));
      } else {
        // In bounds: io::TorchPickle checked every element the view reaches against the storage's size.
        value = storage.as_strided(t.shape, t.strides, t.storage_offset);
        // A view of part of the storage (or a strided one) gets memory of its own, so that it keeps no more alive.
        if (!value.is_contiguous() || value.numel() != storage.numel())
          value = value.clone(at::MemoryFormat::Contiguous);
      }
      out.tensors.emplace(name, std::move(value));
    }
  }
  return out;
}

}  // namespace

TorchCheckpoint read_torch_checkpoint(const std::string& path) { return build(io::TorchArchive(path)); }

TorchCheckpoint read_torch_checkpoint_from_bytes(std::string_view bytes, const std::string& what) {
  return build(io::TorchArchive(bytes, what));
}

TensorMap load_torch_checkpoint(const std::string& path) {
  TorchCheckpoint checkpoint = read_torch_checkpoint(path);
  if (!checkpoint.unwrapped.empty())
    log::info("{}: read the state dict under the checkpoint's key \"{}\" ({} tensors)", path, checkpoint.unwrapped,
              checkpoint.tensors.size());
  if (checkpoint.stripped_module)
    log::info("{}: tensor names lose their \"module.\" prefix (a DataParallel checkpoint)", path);
  return std::move(checkpoint.tensors);
}

}  // namespace em::tensor
