// Tensors of a PyTorch checkpoint (the zip torch.save writes: pytorch_model.bin, torchvision .pth files), read
// without running Python code (io/torch_pickle.hpp parses and checks the file; this builds the tensors).
#pragma once
#include <string>
#include <string_view>

#include "em/tensor/safetensors.hpp"

namespace em::tensor {

struct TorchCheckpoint {
  TensorMap tensors;             // by state-dict name; each tensor owns its memory (CPU, contiguous)
  std::string unwrapped;         // the key the state dict sat under ("model", "state_dict"...), "" at the top level
  bool stripped_module = false;  // the names lost a "module." prefix (DataParallel / DDP)
};

// Reads the state dict of a torch.save file: a plain state dict, or the one a checkpoint dict keeps under a key
// (io::torch_state_dict). Views (transposed, offset, shared storage) become tensors of their own. Throws em::Error
// naming the file on anything io::TorchArchive refuses and on BOOL bytes other than 0 and 1.
TorchCheckpoint read_torch_checkpoint(const std::string& path);
// Same, over the file's bytes in memory (tests); `what` names them in messages.
TorchCheckpoint read_torch_checkpoint_from_bytes(std::string_view bytes, const std::string& what);
// read_torch_checkpoint(path).tensors; says on stderr (info) when the state dict was unwrapped or renamed.
TensorMap load_torch_checkpoint(const std::string& path);

}  // namespace em::tensor
