// PyTorch checkpoints (the zip torch.save writes since torch 1.6: ARCHIVE/data.pkl + ARCHIVE/data/KEY storages)
// without running code: a restricted unpickler of what torch.save writes for state dicts and checkpoint dicts, and
// the zip container (libzip). tensor/torch_pickle.hpp makes tensors of the result.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace em::io {

// The element types of torch's storage classes (torch.FloatStorage ... torch.BoolStorage).
enum class TorchDtype : uint8_t { float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, boolean };
size_t torch_dtype_size(TorchDtype dtype);
const char* torch_dtype_name(TorchDtype dtype);  // "float32", as torch prints it without "torch."

// A storage the pickle refers to by persistent id ('storage', torch.FloatStorage, KEY, LOCATION, NUMEL): its bytes
// are the archive's entry data/KEY, NUMEL elements of `dtype`, little-endian.
struct TorchStorageRef {
  std::string key;
  TorchDtype dtype = TorchDtype::float32;
  uint64_t numel = 0;
  std::string location;  // "cpu", "cuda:0" (where it was saved; we read every storage to the CPU)
};

// A tensor (torch._utils._rebuild_tensor_v2): a strided view of a storage, in elements. Checked when parsed:
// non-negative sizes, strides and offset, no overflow, every element it views inside the storage.
struct TorchTensorRef {
  size_t storage = 0;  // index into TorchPickle::storages
  std::vector<int64_t> shape, strides;
  int64_t storage_offset = 0;
  int64_t numel() const;
};

enum class PickleKind : uint8_t {
  none, boolean, integer, floating, string, tuple, list, dict, tensor,
  storage,  // a persistent-id storage record (only ever an argument of a tensor in torch.save's pickles)
  global    // one of the allowed classes or functions (OrderedDict, _rebuild_tensor_v2, a storage class...)
};
const char* pickle_kind_name(PickleKind kind);

// One object of the pickle. Containers hold indices into TorchPickle::values, so an object the pickle names twice
// (its memo) is one value, as in Python.
struct PickleValue {
  PickleKind kind = PickleKind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  std::string text;              // string; global: "module.name"
  std::vector<uint32_t> items;   // tuple, list: the items; dict: key, value, key, value... (insertion order)
  uint32_t ref = 0;              // tensor: index into tensors; storage: into storages; global: its role (internal)
};

// What data.pkl holds: the object graph (values[root] is the unpickled object), its tensors and their storages.
struct TorchPickle {
  std::vector<PickleValue> values;
  uint32_t root = 0;
  std::vector<TorchTensorRef> tensors;
  std::vector<TorchStorageRef> storages;  // one per key, in first-use order
};

// Unpickles torch.save's data.pkl: protocols 2 to 5, the opcodes torch.save emits for (nested) dicts, lists, tuples,
// numbers, strings and tensors. GLOBAL is an allow-list, never code: collections.OrderedDict (BUILD state such as
// _metadata ignored), torch._utils._rebuild_tensor_v2 / _rebuild_parameter / _rebuild_parameter_with_state,
// torch.Size, torch.jit._pickle.restore_type_tag (LibTorch's torch::pickle_save) and the storage classes; any other
// global is refused naming it. Throws em::Error naming `what`.
TorchPickle parse_torch_pickle(const char* data, size_t size, const std::string& what);

// The tensors of a checkpoint by the names a model loads them under.
struct TorchStateDict {
  std::vector<std::pair<std::string, size_t>> tensors;  // name -> index into TorchPickle::tensors, in pickle order
  std::string unwrapped;        // the key path of the state dict inside a checkpoint dict ("model"), "" at the top
  bool stripped_module = false; // every name began with "module." (DataParallel / DDP) and lost it
};

// Finds the state dict: the top-level dict when it holds tensors itself; otherwise the one key under which the
// tensors sit (or, when several keys hold tensors, the first of "state_dict", "model_state_dict", "model", "module",
// "net", "network"), repeatedly. Names are the dict keys joined with "." below that point (list and integer keys
// as decimals); a "module." prefix on every name is removed. Throws em::Error naming `what` when there is no dict
// of tensors, when several keys hold tensors and none of them is a known name, or when two tensors get one name.
TorchStateDict torch_state_dict(const TorchPickle& pickle, const std::string& what);

// A torch.save zip file (or its bytes). Opening checks the container (a legacy pre-1.6 file, a TorchScript archive
// or anything else is refused with what to do), parses data.pkl and checks that every storage it names is an
// uncompressed entry of exactly NUMEL x element size bytes; a big-endian byteorder is refused. Throws em::Error
// naming the file. Not thread-safe (one libzip handle).
class TorchArchive {
 public:
  explicit TorchArchive(const std::string& path);
  // Over bytes in memory that outlive the object (tests, the fuzz target); `what` names them in messages.
  TorchArchive(std::string_view bytes, const std::string& what);
  ~TorchArchive();
  TorchArchive(const TorchArchive&) = delete;
  TorchArchive& operator=(const TorchArchive&) = delete;

  const std::string& what() const { return what_; }
  const TorchPickle& pickle() const { return pickle_; }
  uint64_t storage_bytes(size_t storage) const;
  // Copies storage `storage`'s bytes (storage_bytes() of them) into dst; a corrupt entry (CRC) is an em::Error.
  void read_storage(size_t storage, void* dst) const;

 private:
  struct Impl;
  void open(std::string_view bytes);
  std::string what_;
  std::unique_ptr<Impl> impl_;
  TorchPickle pickle_;
};

// Whether the bytes begin like a torch.save file: a zip ("PK\3\4") or torch's legacy pickle (its magic number).
bool looks_like_torch_file(std::string_view head);

}  // namespace em::io
