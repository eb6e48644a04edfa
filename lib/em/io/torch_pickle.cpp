#include "em/io/torch_pickle.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/io/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/ranges.h>
#include <zip.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "torch.save storages are little-endian; readers use the bytes as they are");

namespace em::io {
namespace {

// Each dimension list of a tensor; torch has no hard limit, but no real tensor comes near.
constexpr size_t kMaxTensorDims = 64;
// data.pkl of a 100k-tensor checkpoint is ~15 MB; more is a corrupt or hostile file.
constexpr uint64_t kMaxPickleBytes = 256ull << 20;
// The longest module/name line of a GLOBAL and the longest storage key.
constexpr size_t kMaxGlobalLine = 256;
constexpr size_t kMaxStorageKey = 256;

struct DtypeRow {
  TorchDtype dtype;
  const char* name;
  size_t size;
  const char* storage_class;
};
constexpr DtypeRow kDtypes[] = {
    {TorchDtype::float64, "float64", 8, "DoubleStorage"}, {TorchDtype::float32, "float32", 4, "FloatStorage"},
    {TorchDtype::float16, "float16", 2, "HalfStorage"},   {TorchDtype::bfloat16, "bfloat16", 2, "BFloat16Storage"},
    {TorchDtype::int64, "int64", 8, "LongStorage"},       {TorchDtype::int32, "int32", 4, "IntStorage"},
    {TorchDtype::int16, "int16", 2, "ShortStorage"},      {TorchDtype::int8, "int8", 1, "CharStorage"},
    {TorchDtype::uint8, "uint8", 1, "ByteStorage"},       {TorchDtype::boolean, "bool", 1, "BoolStorage"},
};

const DtypeRow& row_of(TorchDtype dtype) {
  for (const auto& r : kDtypes)
    if (r.dtype == dtype) return r;
  return kDtypes[1];
}

// What an allowed GLOBAL stands for (PickleValue::ref of a global).
enum class Role : uint32_t {
  ordered_dict,
  rebuild_tensor_v2,
  rebuild_parameter,             // (data, requires_grad, backward_hooks)
  rebuild_parameter_with_state,  // (data, requires_grad, backward_hooks, state)
  torch_size,
  restore_type_tag,              // (value, "Dict[str, Tensor]"): LibTorch's torch::pickle_save tags typed containers
  storage_class,                 // PickleValue::integer holds the TorchDtype
};

struct AllowedGlobal {
  const char* module;
  const char* name;
  Role role;
};
constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Role::ordered_dict},
    {"torch._utils", "_rebuild_tensor_v2", Role::rebuild_tensor_v2},
    {"torch._utils", "_rebuild_parameter", Role::rebuild_parameter},
    {"torch._utils", "_rebuild_parameter_with_state", Role::rebuild_parameter_with_state},
    {"torch", "Size", Role::torch_size},
    {"torch.jit._pickle", "restore_type_tag", Role::restore_type_tag},
};

// Text from the file in a message: printable ASCII kept, the rest '?', at most 120 characters.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 120)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 120) out += "...";
  return out;
}

// Opcodes of pickle protocols 2-5 that torch.save's pickles of dicts, lists, numbers, strings and tensors use.
namespace op {
constexpr uint8_t MARK = '(', STOP = '.', BININT = 'J', BININT1 = 'K', BININT2 = 'M', NONE = 'N',
                  BINPERSID = 'Q', REDUCE = 'R', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c',
                  DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', LIST = 'l',
                  EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't',
                  EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', PROTO = 0x80, TUPLE1 = 0x85, TUPLE2 = 0x86,
                  TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
                  SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95;
}  // namespace op

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, const std::string& what)
      : p_(reinterpret_cast<const unsigned char*>(data)), size_(size), what_(what) {}

  TorchPickle run() {
    while (true) {
      if (pos_ >= size_) bad("truncated: the pickle ends without STOP");
      at_ = pos_;
      opcode_ = p_[pos_++];
      if (opcode_ == op::STOP) {
        out_.root = pop();
        return std::move(out_);
      }
      step();
    }
  }

 private:
  template <typename... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> f, Args&&... args) const {
    fail_at(what_, "corrupt or unsupported pickle (data.pkl, opcode 0x{:02x} at byte {}): {}", opcode_, at_,
            fmt::format(f, std::forward<Args>(args)...));
  }

  const unsigned char* take(uint64_t n) {
    if (n > size_ - pos_) bad("truncated: {} more bytes needed, {} left", n, size_ - pos_);
    const unsigned char* at = p_ + pos_;
    pos_ += static_cast<size_t>(n);
    return at;
  }
  uint64_t le(size_t n) {
    const unsigned char* b = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    return v;
  }
  std::string_view line() {
    const size_t end = std::min(size_, pos_ + kMaxGlobalLine + 1);
    const void* nl = std::memchr(p_ + pos_, '\n', end - pos_);
    if (!nl && end == size_) bad("truncated: a GLOBAL's module/name line has no end");
    if (!nl) bad("GLOBAL: no module/name line of at most {} characters", kMaxGlobalLine);
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<const unsigned char*>(nl) - (p_ + pos_));
    pos_ += s.size() + 1;
    return s;
  }

  uint32_t add(PickleValue v) {
    if (out_.values.size() >= std::numeric_limits<uint32_t>::max()) bad("too many objects");
    out_.values.push_back(std::move(v));
    return static_cast<uint32_t>(out_.values.size() - 1);
  }
  uint32_t add(PickleKind kind) {
    PickleValue v;
    v.kind = kind;
    return add(std::move(v));
  }
  PickleValue& at(uint32_t id) { return out_.values[id]; }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  uint32_t& top() {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) bad("no MARK to pop to");
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  PickleValue& expect(uint32_t id, PickleKind kind, const char* what) {
    PickleValue& v = at(id);
    if (v.kind != kind) bad("{}: expected a {}, got a {}", what, pickle_kind_name(kind), pickle_kind_name(v.kind));
    return v;
  }

  void push_string(uint64_t n) {
    const char* s = reinterpret_cast<const char*>(take(n));
    if (!is_valid_utf8({s, static_cast<size_t>(n)})) bad("a string that is not UTF-8");
    PickleValue v;
    v.kind = PickleKind::string;
    v.text.assign(s, static_cast<size_t>(n));
    stack_.push_back(add(std::move(v)));
  }
  void push_int(int64_t i) {
    PickleValue v;
    v.kind = PickleKind::integer;
    v.integer = i;
    stack_.push_back(add(std::move(v)));
  }
  // LONG1 / LONG4: little-endian two's complement of n bytes; wider than 64 bits is no tensor size or count.
  void push_long(uint64_t n) {
    if (n > 8) bad("an integer of {} bytes (more than 64 bits)", n);
    const unsigned char* b = take(n);
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    push_int(static_cast<int64_t>(v));
  }
  void push_tuple(std::vector<uint32_t> items) {
    PickleValue v;
    v.kind = PickleKind::tuple;
    v.items = std::move(items);
    stack_.push_back(add(std::move(v)));
  }

  // A dict key as text for Python's "same key" rule (1, 1.0 and True are one key); "" when not hashable by us.
  std::string key_text(uint32_t id) {
    const PickleValue& k = at(id);
    switch (k.kind) {
      case PickleKind::string: return "s" + k.text;
      case PickleKind::integer: return "i" + std::to_string(k.integer);
      case PickleKind::boolean: return k.boolean ? "i1" : "i0";
      case PickleKind::none: return "n";
      case PickleKind::floating:
        if (std::fabs(k.floating) < 9e18 && std::floor(k.floating) == k.floating)  // integral: the int's key
          return "i" + std::to_string(static_cast<int64_t>(k.floating));
        return fmt::format("f{}", k.floating);
      default: return {};
    }
  }
  void set_item(uint32_t dict, uint32_t key, uint32_t value) {
    PickleValue& d = expect(dict, PickleKind::dict, "SETITEM");
    std::string text = key_text(key);
    if (!text.empty()) {
      auto [it, fresh] = dict_keys_.try_emplace(std::to_string(dict) + ":" + text, d.items.size());
      if (!fresh) {  // Python keeps the first key and the last value
        d.items[it->second + 1] = value;
        return;
      }
    }
    d.items.push_back(key);
    d.items.push_back(value);
  }

  void push_global(std::string_view module, std::string_view name) {
    PickleValue v;
    v.kind = PickleKind::global;
    v.text = std::string(module) + "." + std::string(name);
    bool known = false;
    for (const auto& g : kAllowedGlobals)
      if (module == g.module && name == g.name) {
        v.ref = static_cast<uint32_t>(g.role);
        known = true;
      }
    if (module == "torch")
      for (const auto& r : kDtypes)
        if (name == r.storage_class) {
          v.ref = static_cast<uint32_t>(Role::storage_class);
          v.integer = static_cast<int64_t>(r.dtype);
          known = true;
        }
    if (!known)
      fail_at(what_,
              "not a weights file: it pickles {}; only tensors, dicts, lists, numbers and strings are read (save the "
              "weights alone, e.g. torch.save(model.state_dict(), PATH), and read that file)",
              printable(v.text));
    stack_.push_back(add(std::move(v)));
  }

  // BINPERSID: ('storage', storage class, key, location, numel) -> a storage value (one per key).
  void persistent_load(uint32_t pid_id) {
    const PickleValue& pid = expect(pid_id, PickleKind::tuple, "persistent id");
    if (pid.items.size() != 5 || at(pid.items[0]).kind != PickleKind::string || at(pid.items[0]).text != "storage")
      bad("persistent id: expected ('storage', class, key, location, numel)");
    const PickleValue& cls = at(pid.items[1]);
    if (cls.kind != PickleKind::global || cls.ref != static_cast<uint32_t>(Role::storage_class))
      bad("persistent id: expected a storage class, got {}",
          cls.kind == PickleKind::global ? printable(cls.text) : pickle_kind_name(cls.kind));
    TorchStorageRef s;
    s.dtype = static_cast<TorchDtype>(cls.integer);
    s.key = expect(pid.items[2], PickleKind::string, "storage key").text;
    s.location = expect(pid.items[3], PickleKind::string, "storage location").text;
    const int64_t numel = expect(pid.items[4], PickleKind::integer, "storage size").integer;
    if (s.key.empty() || s.key.size() > kMaxStorageKey || s.key.find('/') != std::string::npos ||
        s.key.find('\0') != std::string::npos)
      bad("storage key \"{}\" is not a file name", printable(s.key));
    if (numel < 0 || static_cast<uint64_t>(numel) > static_cast<uint64_t>(INT64_MAX) / row_of(s.dtype).size)
      bad("storage \"{}\": size {} out of range", printable(s.key), numel);
    s.numel = static_cast<uint64_t>(numel);
    auto [it, fresh] = storage_index_.try_emplace(s.key, out_.storages.size());
    if (fresh) {
      out_.storages.push_back(std::move(s));
    } else {
      const TorchStorageRef& seen = out_.storages[it->second];
      if (seen.dtype != s.dtype || seen.numel != s.numel)
        bad("storage \"{}\" is named as {} x {} and as {} x {}", printable(s.key), seen.numel,
            torch_dtype_name(seen.dtype), s.numel, torch_dtype_name(s.dtype));
    }
    PickleValue v;
    v.kind = PickleKind::storage;
    v.ref = static_cast<uint32_t>(it->second);
    stack_.push_back(add(std::move(v)));
  }

  std::vector<int64_t> int_list(uint32_t id, const char* what) {
    const PickleValue& v = at(id);
    if (v.kind != PickleKind::tuple && v.kind != PickleKind::list)
      bad("tensor {}: expected a tuple of integers, got a {}", what, pickle_kind_name(v.kind));
    if (v.items.size() > kMaxTensorDims)
      bad("tensor {}: {} dimensions (at most {})", what, v.items.size(), kMaxTensorDims);
    std::vector<int64_t> out;
    for (uint32_t item : v.items) {
      const int64_t i = expect(item, PickleKind::integer, what).integer;
      if (i < 0) bad("tensor {}: negative value {}", what, i);
      out.push_back(i);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
  uint32_t rebuild_tensor(const PickleValue& args) {
    if (args.items.size() != 6 && args.items.size() != 7)
      bad("_rebuild_tensor_v2: {} arguments (expected 6 or 7)", args.items.size());
    TorchTensorRef t;
    t.storage = expect(args.items[0], PickleKind::storage, "tensor storage").ref;
    t.storage_offset = expect(args.items[1], PickleKind::integer, "tensor storage offset").integer;
    t.shape = int_list(args.items[2], "size");
    t.strides = int_list(args.items[3], "stride");
    expect(args.items[4], PickleKind::boolean, "tensor requires_grad");
    const TorchStorageRef& s = out_.storages[t.storage];
    if (t.shape.size() != t.strides.size())
      bad("tensor of size {} has {} strides", fmt::join(t.shape, "x"), t.strides.size());
    if (t.storage_offset < 0) bad("tensor storage offset {} is negative", t.storage_offset);
    // Every element the view reaches: offset + sum((size - 1) * stride) < numel, each step checked for overflow.
    int64_t numel = 1, last = t.storage_offset;
    for (size_t d = 0; d < t.shape.size(); ++d)
      if (__builtin_mul_overflow(numel, t.shape[d], &numel)) bad("tensor size {} overflows", fmt::join(t.shape, "x"));
    if (numel > 0) {
      for (size_t d = 0; d < t.shape.size(); ++d) {
        int64_t reach = 0;
        if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &reach) || __builtin_add_overflow(last, reach, &last))
          bad("tensor view overflows (size {}, stride {})", fmt::join(t.shape, "x"), fmt::join(t.strides, "x"));
      }
    }
    if ((numel > 0 && static_cast<uint64_t>(last) >= s.numel) ||
        (numel == 0 && static_cast<uint64_t>(t.storage_offset) > s.numel))
      bad("tensor of size [{}] stride [{}] offset {} reaches outside storage \"{}\" of {} elements",
          fmt::join(t.shape, ", "), fmt::join(t.strides, ", "), t.storage_offset, printable(s.key), s.numel);
    out_.tensors.push_back(std::move(t));
    PickleValue v;
    v.kind = PickleKind::tensor;
    v.ref = static_cast<uint32_t>(out_.tensors.size() - 1);
    return add(std::move(v));
  }

  void reduce() {
    const uint32_t args_id = pop();
    uint32_t& fn = top();
    const PickleValue& f = at(fn);
    if (f.kind != PickleKind::global) bad("REDUCE calls a {}", pickle_kind_name(f.kind));
    const PickleValue& args = expect(args_id, PickleKind::tuple, "REDUCE arguments");
    switch (static_cast<Role>(f.ref)) {
      case Role::ordered_dict:
        if (!args.items.empty()) bad("OrderedDict with arguments");
        fn = add(PickleKind::dict);
        return;
      case Role::rebuild_tensor_v2: fn = rebuild_tensor(args); return;
      case Role::rebuild_parameter:
      case Role::rebuild_parameter_with_state: {
        const size_t n = static_cast<Role>(f.ref) == Role::rebuild_parameter ? 3 : 4;
        if (args.items.size() != n) bad("{}: {} arguments (expected {})", f.text, args.items.size(), n);
        expect(args.items[0], PickleKind::tensor, "parameter data");
        fn = args.items[0];
        return;
      }
      case Role::torch_size: {
        if (args.items.size() != 1) bad("torch.Size: {} arguments (expected 1)", args.items.size());
        int_list(args.items[0], "torch.Size");
        std::vector<uint32_t> items = at(args.items[0]).items;
        PickleValue v;
        v.kind = PickleKind::tuple;
        v.items = std::move(items);
        fn = add(std::move(v));
        return;
      }
      case Role::restore_type_tag:  // Python returns the value, only annotating its type
        if (args.items.size() != 2 || at(args.items[1]).kind != PickleKind::string)
          bad("restore_type_tag: expected (value, type name)");
        fn = args.items[0];
        return;
      case Role::storage_class: bad("calls the storage class {}", f.text);
    }
    bad("REDUCE calls {}", printable(f.text));
  }

  void step() {
    using namespace op;
    switch (opcode_) {
      case PROTO:
        if (const uint64_t proto = le(1); proto > 5) bad("pickle protocol {} (this reader knows 2 to 5)", proto);
        return;
      case FRAME: take(8); return;  // frames only group opcodes
      case MARK: marks_.push_back(stack_.size()); return;
      case EMPTY_DICT: stack_.push_back(add(PickleKind::dict)); return;
      case EMPTY_LIST: stack_.push_back(add(PickleKind::list)); return;
      case EMPTY_TUPLE: push_tuple({}); return;
      case TUPLE: push_tuple(pop_mark()); return;
      case TUPLE1: {
        uint32_t a = pop();
        push_tuple({a});
        return;
      }
      case TUPLE2: {
        uint32_t b = pop(), a = pop();
        push_tuple({a, b});
        return;
      }
      case TUPLE3: {
        uint32_t c = pop(), b = pop(), a = pop();
        push_tuple({a, b, c});
        return;
      }
      case LIST: {
        PickleValue v;
        v.kind = PickleKind::list;
        v.items = pop_mark();
        stack_.push_back(add(std::move(v)));
        return;
      }
      case DICT: {
        std::vector<uint32_t> items = pop_mark();
        if (items.size() % 2) bad("DICT with an odd number of items");
        const uint32_t d = add(PickleKind::dict);
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        stack_.push_back(d);
        return;
      }
      case SETITEM: {
        uint32_t value = pop(), key = pop();
        set_item(top(), key, value);
        return;
      }
      case SETITEMS: {
        std::vector<uint32_t> items = pop_mark();
        if (items.size() % 2) bad("SETITEMS with an odd number of items");
        const uint32_t d = top();
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        return;
      }
      case APPEND: {
        uint32_t item = pop();
        expect(top(), PickleKind::list, "APPEND").items.push_back(item);
        return;
      }
      case APPENDS: {
        std::vector<uint32_t> items = pop_mark();
        auto& list = expect(top(), PickleKind::list, "APPENDS").items;
        list.insert(list.end(), items.begin(), items.end());
        return;
      }
      case BINUNICODE: push_string(le(4)); return;
      case SHORT_BINUNICODE: push_string(le(1)); return;
      case BINUNICODE8: push_string(le(8)); return;
      case BININT: push_int(static_cast<int32_t>(static_cast<uint32_t>(le(4)))); return;
      case BININT1: push_int(static_cast<int64_t>(le(1))); return;
      case BININT2: push_int(static_cast<int64_t>(le(2))); return;
      case LONG1: push_long(le(1)); return;
      case LONG4: {
        const int32_t n = static_cast<int32_t>(static_cast<uint32_t>(le(4)));
        if (n < 0) bad("LONG4 of negative length");
        push_long(static_cast<uint64_t>(n));
        return;
      }
      case BINFLOAT: {
        const unsigned char* b = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];  // big-endian
        PickleValue v;
        v.kind = PickleKind::floating;
        std::memcpy(&v.floating, &bits, 8);
        stack_.push_back(add(std::move(v)));
        return;
      }
      case NEWTRUE:
      case NEWFALSE: {
        PickleValue v;
        v.kind = PickleKind::boolean;
        v.boolean = opcode_ == NEWTRUE;
        stack_.push_back(add(std::move(v)));
        return;
      }
      case NONE: stack_.push_back(add(PickleKind::none)); return;
      case BINPUT: memo_[static_cast<uint32_t>(le(1))] = top(); return;
      case LONG_BINPUT: memo_[static_cast<uint32_t>(le(4))] = top(); return;
      case MEMOIZE: {
        const uint32_t v = top();
        memo_[static_cast<uint32_t>(memo_.size())] = v;
        return;
      }
      case BINGET:
      case LONG_BINGET: {
        const uint32_t key = static_cast<uint32_t>(le(opcode_ == BINGET ? 1 : 4));
        auto it = memo_.find(key);
        if (it == memo_.end()) bad("memo {} was never stored", key);
        stack_.push_back(it->second);
        return;
      }
      case GLOBAL: {
        std::string_view module = line();
        std::string_view name = line();
        push_global(module, name);
        return;
      }
      case STACK_GLOBAL: {
        const uint32_t name = pop(), module = pop();
        const std::string n = expect(name, PickleKind::string, "STACK_GLOBAL name").text;
        const std::string m = expect(module, PickleKind::string, "STACK_GLOBAL module").text;
        push_global(m, n);
        return;
      }
      case REDUCE: reduce(); return;
      case BUILD: {
        pop();  // the state: OrderedDict's __dict__ (_metadata), which holds no weights
        if (at(top()).kind != PickleKind::dict) bad("BUILD on a {}", pickle_kind_name(at(top()).kind));
        return;
      }
      case BINPERSID: persistent_load(pop()); return;
      default:
        bad("opcode not used by torch.save for weights (protocol 2-5 dicts, lists, tuples, numbers, strings, "
            "tensors)");
    }
  }

  const unsigned char* p_;
  size_t size_, pos_ = 0, at_ = 0;
  uint8_t opcode_ = 0;
  const std::string& what_;
  TorchPickle out_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  std::unordered_map<std::string, size_t> storage_index_;
  std::unordered_map<std::string, size_t> dict_keys_;  // "DICT_ID:KEY" -> position of the key in the dict's items
};

// Walks the object graph from one value and lists the tensors below it by dotted name. Depth is bounded as JSON's
// (the walk recurses), a container that holds itself is an error, and so is a graph whose shared parts would make
// the listing explode (each value is listed at most a few times in any real checkpoint). Whether a value holds
// tensors at all is worked out once per value, however often it is shared, and prunes the listing.
class TensorWalk {
 public:
  TensorWalk(const TorchPickle& p, const std::string& what)
      : p_(p), what_(what), on_path_(p.values.size(), false), holds_(p.values.size(), -1),
        budget_(4 * p.values.size() + 1024) {}

  bool holds_tensors(uint32_t id, int depth = 0) {
    if (holds_[id] >= 0) return holds_[id] == 1;
    const PickleValue& v = p_.values[id];
    bool any = v.kind == PickleKind::tensor;
    if (is_container(v)) {
      enter(id, depth, "");
      for (size_t i = v.kind == PickleKind::dict ? 1 : 0; i < v.items.size() && !any;
           i += v.kind == PickleKind::dict ? 2 : 1)
        any = holds_tensors(v.items[i], depth + 1);
      on_path_[id] = false;
    }
    holds_[id] = any ? 1 : 0;
    return any;
  }

  void list(uint32_t id, const std::string& prefix, int depth, std::vector<std::pair<std::string, size_t>>& out) {
    const PickleValue& v = p_.values[id];
    if (v.kind == PickleKind::tensor) {
      out.emplace_back(prefix, v.ref);
      return;
    }
    if (!holds_tensors(id, depth)) return;
    if (budget_-- == 0)
      fail_at(what_, "corrupt pickle: its containers share items so often that listing the tensors would not end");
    enter(id, depth, prefix);
    auto join = [&](const std::string& part) { return prefix.empty() ? part : prefix + "." + part; };
    if (v.kind == PickleKind::dict) {
      for (size_t i = 0; i + 1 < v.items.size(); i += 2) {
        const PickleValue& key = p_.values[v.items[i]];
        if (key.kind != PickleKind::string && key.kind != PickleKind::integer) {
          if (holds_tensors(v.items[i + 1], depth + 1))
            fail_at(what_, "tensors under a dict key that is a {} (at \"{}\"); only string and integer keys name "
                    "tensors", pickle_kind_name(key.kind), printable(prefix));
          continue;
        }
        list(v.items[i + 1], join(key.kind == PickleKind::string ? key.text : std::to_string(key.integer)),
             depth + 1, out);
      }
    } else {
      for (size_t i = 0; i < v.items.size(); ++i) list(v.items[i], join(std::to_string(i)), depth + 1, out);
    }
    on_path_[id] = false;
  }

 private:
  static bool is_container(const PickleValue& v) {
    return v.kind == PickleKind::dict || v.kind == PickleKind::list || v.kind == PickleKind::tuple;
  }
  void enter(uint32_t id, int depth, const std::string& prefix) {
    if (depth >= kMaxJsonDepth)
      fail_at(what_, "corrupt pickle: containers nested more than {} deep{}", kMaxJsonDepth,
              prefix.empty() ? "" : " (at \"" + printable(prefix) + "\")");
    if (on_path_[id])
      fail_at(what_, "corrupt pickle: a container holds itself{}",
              prefix.empty() ? "" : " (at \"" + printable(prefix) + "\")");
    on_path_[id] = true;
  }

  const TorchPickle& p_;
  const std::string& what_;
  std::vector<bool> on_path_;
  std::vector<int8_t> holds_;  // -1 not known yet, 0 no tensor below, 1 some tensor below
  size_t budget_;
};

// The keys under which checkpoints keep a model's weights, most specific first (timm, Lightning and mmcv write
// "state_dict"; torchvision's and DETR's training scripts "model"; many tutorials "model_state_dict").
constexpr const char* kStateDictKeys[] = {"state_dict", "model_state_dict", "model", "module", "net", "network"};

}  // namespace

size_t torch_dtype_size(TorchDtype dtype) { return row_of(dtype).size; }
const char* torch_dtype_name(TorchDtype dtype) { return row_of(dtype).name; }

int64_t TorchTensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // checked when parsed
  return n;
}

const char* pickle_kind_name(PickleKind kind) {
  switch (kind) {
    case PickleKind::none: return "None";
    case PickleKind::boolean: return "bool";
    case PickleKind::integer: return "int";
    case PickleKind::floating: return "float";
    case PickleKind::string: return "str";
    case PickleKind::tuple: return "tuple";
    case PickleKind::list: return "list";
    case PickleKind::dict: return "dict";
    case PickleKind::tensor: return "tensor";
    case PickleKind::storage: return "storage";
    case PickleKind::global: return "class or function";
  }
  return "?";
}

TorchPickle parse_torch_pickle(const char* data, size_t size, const std::string& what) {
  return Unpickler(data, size, what).run();
}

TorchStateDict torch_state_dict(const TorchPickle& pickle, const std::string& what) {
  TorchStateDict out;
  if (pickle.values.empty()) fail_at(what, "empty pickle");
  const PickleValue& root = pickle.values[pickle.root];
  if (root.kind != PickleKind::dict)
    fail_at(what, "holds a {}, not a dict of tensors (a state dict or a checkpoint dict holding one)",
            pickle_kind_name(root.kind));
  TensorWalk walk(pickle, what);
  uint32_t node = pickle.root;
  for (int level = 0; level < kMaxJsonDepth; ++level) {
    const PickleValue& d = pickle.values[node];
    bool direct = false;
    std::vector<std::pair<std::string, uint32_t>> holders;  // string keys whose value holds tensors
    for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
      const PickleValue& key = pickle.values[d.items[i]];
      const uint32_t value = d.items[i + 1];
      if (pickle.values[value].kind == PickleKind::tensor) direct = true;
      else if (key.kind == PickleKind::string && walk.holds_tensors(value)) holders.emplace_back(key.text, value);
    }
    if (direct || holders.empty()) break;
    const std::pair<std::string, uint32_t>* pick = holders.size() == 1 ? &holders[0] : nullptr;
    for (const char* known : kStateDictKeys) {
      if (pick) break;
      for (const auto& h : holders)
        if (h.first == known) pick = &h;
    }
    if (!pick) {
      std::vector<std::string> keys;
      for (const auto& h : holders) keys.push_back("\"" + printable(h.first) + "\"");
      fail_at(what, "a checkpoint whose tensors sit under several keys ({}{}) and none is a known name of the "
              "weights ({}); save the state dict alone: torch.save(checkpoint[KEY], PATH)",
              out.unwrapped.empty() ? "" : "in \"" + out.unwrapped + "\": ", fmt::join(keys, ", "),
              fmt::join(kStateDictKeys, ", "));
    }
    if (pickle.values[pick->second].kind != PickleKind::dict) break;
    out.unwrapped += (out.unwrapped.empty() ? "" : ".") + pick->first;
    node = pick->second;
  }

  walk.list(node, "", 0, out.tensors);
  if (out.tensors.empty())
    fail_at(what, "holds no tensors{}", out.unwrapped.empty() ? "" : " under \"" + out.unwrapped + "\"");
  const std::string module = "module.";
  out.stripped_module = std::all_of(out.tensors.begin(), out.tensors.end(),
                                    [&](const auto& t) { return t.first.rfind(module, 0) == 0; });
  std::unordered_set<std::string> names;
  for (auto& [name, index] : out.tensors) {
    if (out.stripped_module) name.erase(0, module.size());
    if (name.empty()) fail_at(what, "a tensor with an empty name");
    if (!names.insert(name).second) fail_at(what, "two tensors are named \"{}\"", printable(name));
  }
  return out;
}

bool looks_like_torch_file(std::string_view head) {
  // The legacy format starts with a pickled magic number: PROTO n, LONG1 10 bytes 0x1950a86a20f9469cfc6c.
  static constexpr unsigned char kLegacyMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                                   0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("PK\x03\x04", 4)) return true;
  return head.size() >= 2 + sizeof(kLegacyMagic) && static_cast<unsigned char>(head[0]) == 0x80 &&
         std::memcmp(head.data() + 2, kLegacyMagic, sizeof(kLegacyMagic)) == 0;
}

struct TorchArchive::Impl {
  std::unique_ptr<MappedFile> file;
  zip_t* zip = nullptr;
  std::vector<zip_uint64_t> storage_entry;  // per storage: its entry's index
  std::vector<uint64_t> storage_size;
  ~Impl() {
    if (zip) zip_discard(zip);
  }
};

TorchArchive::TorchArchive(const std::string& path) : what_(path), impl_(std::make_unique<Impl>()) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) fail_at(path, "no such file");
  if (ec) fail_at(path, "cannot read ({})", ec.message());
  if (std::filesystem::is_directory(status)) fail_at(path, "is a folder, expected a PyTorch checkpoint (.pth, .bin)");
  if (!std::filesystem::is_regular_file(status))
    fail_at(path, "not a regular file (a FIFO, socket or device), expected a PyTorch checkpoint (.pth, .bin)");
  impl_->file = std::make_unique<MappedFile>(path);
  open({impl_->file->data(), impl_->file->size()});
}

TorchArchive::TorchArchive(std::string_view bytes, const std::string& what)
    : what_(what), impl_(std::make_unique<Impl>()) {
  open(bytes);
}

TorchArchive::~TorchArchive() = default;

namespace {

std::string zip_message(zip_error_t* error) {
  std::string out = zip_error_strerror(error);
  zip_error_fini(error);
  return out;
}

// Reads entry `index` (exactly `size` bytes) into dst; reading on to the end makes libzip check the CRC.
void read_entry(zip_t* zip, zip_uint64_t index, void* dst, uint64_t size, const std::string& what,
                const std::string& name) {
  zip_file_t* f = zip_fopen_index(zip, index, 0);
  if (!f) fail_at(what, "cannot read {} ({})", name, zip_strerror(zip));
  char* out = static_cast<char*>(dst);
  uint64_t done = 0;
  zip_int64_t n = 0;
  while (done < size && (n = zip_fread(f, out + done, size - done)) > 0) done += static_cast<uint64_t>(n);
  char extra = 0;
  if (done == size) n = zip_fread(f, &extra, 1);  // 0 at the end, after libzip has checked the CRC
  const std::string error = n < 0 ? zip_file_strerror(f) : "";
  zip_fclose(f);
  if (n < 0) fail_at(what, "corrupt archive: reading {} failed ({})", name, error);
  if (done != size || n != 0)
    fail_at(what, "corrupt archive: {} is {} than its size ({} bytes)", name, done != size ? "shorter" : "longer",
            size);
}

}  // namespace

void TorchArchive::open(std::string_view bytes) {
  if (!looks_like_torch_file(bytes))
    fail_at(what_, "not a PyTorch checkpoint (the zip file torch.save writes starts with \"PK\"; safetensors files "
            "go by the .safetensors name)");
  if (bytes[0] != 'P')
    fail_at(what_, "a PyTorch checkpoint in the legacy format (torch < 1.6, or _use_new_zipfile_serialization="
            "False), which emkit does not read; re-save it with torch >= 1.6: "
            "torch.save(torch.load(PATH, map_location=\"cpu\"), NEW_PATH)");
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (!source) fail_at(what_, "cannot open as a zip file ({})", zip_message(&error));
  impl_->zip = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (!impl_->zip) {
    zip_source_free(source);
    fail_at(what_, "corrupt zip file ({})", zip_message(&error));
  }
  zip_error_fini(&error);
  zip_t* zip = impl_->zip;

  // torch's reader takes the folder of the first entry as the archive's name ("archive", or the file's stem).
  const zip_int64_t entries = zip_get_num_entries(zip, 0);
  const char* first = entries > 0 ? zip_get_name(zip, 0, ZIP_FL_ENC_RAW) : nullptr;
  const char* slash = first ? std::strchr(first, '/') : nullptr;
  if (!slash) fail_at(what_, "not a torch.save archive (its entries are not in one folder holding data.pkl)");
  const std::string prefix(first, slash - first + 1);
  auto locate = [&](const std::string& name) { return zip_name_locate(zip, (prefix + name).c_str(), ZIP_FL_ENC_RAW); };
  auto stat = [&](zip_int64_t index, zip_stat_t& st) {
    zip_stat_init(&st);
    if (zip_stat_index(zip, static_cast<zip_uint64_t>(index), 0, &st) != 0)
      fail_at(what_, "corrupt zip file ({})", zip_strerror(zip));
  };

  if (locate("constants.pkl") >= 0)
    fail_at(what_, "a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save its weights with "
            "torch.save(torch.jit.load(PATH).state_dict(), NEW_PATH)");
  if (const zip_int64_t index = locate("byteorder"); index >= 0) {
    zip_stat_t st;
    stat(index, st);
    if (st.size > 16) fail_at(what_, "corrupt archive: byteorder entry of {} bytes", st.size);
    std::string order(st.size, '\0');
    read_entry(zip, static_cast<zip_uint64_t>(index), order.data(), st.size, what_, "byteorder");
    if (order == "big")
      fail_at(what_, "saved on a big-endian machine (byteorder \"big\"); load and re-save it on a little-endian one");
    if (order != "little") fail_at(what_, "corrupt archive: byteorder \"{}\" (expected \"little\")", printable(order));
  }

  const zip_int64_t pkl = locate("data.pkl");
  if (pkl < 0) fail_at(what_, "not a torch.save archive (no {}data.pkl)", printable(prefix));
  zip_stat_t st;
  stat(pkl, st);
  if (st.size > kMaxPickleBytes)
    fail_at(what_, "data.pkl of {} bytes (a weights file's is at most {} MiB)", st.size, kMaxPickleBytes >> 20);
  std::string pickle_bytes(st.size, '\0');
  read_entry(zip, static_cast<zip_uint64_t>(pkl), pickle_bytes.data(), st.size, what_, "data.pkl");
  pickle_ = parse_torch_pickle(pickle_bytes.data(), pickle_bytes.size(), what_);

  // Every storage: an entry data/KEY, stored as is (torch.save never compresses, and a compressed entry could
  // inflate past the file's size), of exactly numel x element size bytes.
  for (const TorchStorageRef& s : pickle_.storages) {
    const std::string name = "data/" + s.key;
    const zip_int64_t index = locate(name);
    if (index < 0) fail_at(what_, "corrupt archive: storage \"{}\" ({}) is missing", printable(s.key), printable(name));
    stat(index, st);
    if (st.comp_method != ZIP_CM_STORE || st.encryption_method != ZIP_EM_NONE)
      fail_at(what_, "{} is compressed or encrypted (torch.save stores storages as they are); re-save the file",
              printable(name));
    const uint64_t expected = s.numel * torch_dtype_size(s.dtype);
    if (st.size != expected)
      fail_at(what_, "corrupt archive: {} holds {} bytes, but the pickle says {} x {} ({} bytes)", printable(name),
              st.size, s.numel, torch_dtype_name(s.dtype), expected);
    impl_->storage_entry.push_back(static_cast<zip_uint64_t>(index));
    impl_->storage_size.push_back(expected);
  }
}

uint64_t TorchArchive::storage_bytes(size_t storage) const { return impl_->storage_size.at(storage); }

void TorchArchive::read_storage(size_t storage, void* dst) const {
  read_entry(impl_->zip, impl_->storage_entry.at(storage), dst, impl_->storage_size.at(storage), what_,
             "data/" + pickle_.storages.at(storage).key);
}

}  // namespace em::io
