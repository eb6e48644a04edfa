// libFuzzer target: io/torch_pickle, the reader of PyTorch checkpoints downloaded from anywhere. Input starting "PK"
// is a whole torch.save zip (libzip, data.pkl, storage entries: every storage is then read); anything else is a
// data.pkl alone. Then the state dict is picked out (nesting, cycles, shared containers) and what the parser
// promises about an accepted tensor is checked: known dtype, non-negative sizes, strides and offset, and every
// element it views inside its storage (128-bit arithmetic, so overflow cannot hide).
#include "fuzz_support.hpp"
#include "em/io/torch_pickle.hpp"

#include <vector>

namespace {

void check(const em::io::TorchPickle& p) {
  EM_FUZZ_CHECK(p.root < p.values.size());
  for (const em::io::TorchTensorRef& t : p.tensors) {
    EM_FUZZ_CHECK(t.storage < p.storages.size());
    EM_FUZZ_CHECK(t.shape.size() == t.strides.size() && t.storage_offset >= 0);
    const em::io::TorchStorageRef& s = p.storages[t.storage];
    EM_FUZZ_CHECK(em::io::torch_dtype_size(s.dtype) > 0);
    bool empty = false;
    __int128 last = t.storage_offset;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      EM_FUZZ_CHECK(t.shape[d] >= 0 && t.strides[d] >= 0);
      empty = empty || t.shape[d] == 0;
      last += static_cast<__int128>(t.shape[d] - 1) * t.strides[d];
    }
    if (empty) EM_FUZZ_CHECK(static_cast<__int128>(t.storage_offset) <= static_cast<__int128>(s.numel));
    else EM_FUZZ_CHECK(last < static_cast<__int128>(s.numel));
  }
}

void state_dict(const em::io::TorchPickle& p) {
  const em::io::TorchStateDict sd = em::io::torch_state_dict(p, "fuzz.pth");
  EM_FUZZ_CHECK(!sd.tensors.empty());
  for (const auto& [name, index] : sd.tensors) EM_FUZZ_CHECK(!name.empty() && index < p.tensors.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  em::fuzz::expect_clean([&] {
    const std::string_view bytes = em::fuzz::bytes_of(data, size);
    if (bytes.substr(0, 2) == "PK") {
      em::io::TorchArchive archive(bytes, "fuzz.pth");
      check(archive.pickle());
      std::vector<char> buffer;
      for (size_t s = 0; s < archive.pickle().storages.size(); ++s) {
        const em::io::TorchStorageRef& ref = archive.pickle().storages[s];
        EM_FUZZ_CHECK(archive.storage_bytes(s) == ref.numel * em::io::torch_dtype_size(ref.dtype));
        EM_FUZZ_CHECK(archive.storage_bytes(s) <= size);  // stored entries: never more than the file holds
        buffer.resize(archive.storage_bytes(s));
        archive.read_storage(s, buffer.data());
      }
      state_dict(archive.pickle());
    } else {
      const em::io::TorchPickle p = em::io::parse_torch_pickle(bytes.data(), bytes.size(), "fuzz.pkl");
      check(p);
      state_dict(p);
    }
  });
  return 0;
}
