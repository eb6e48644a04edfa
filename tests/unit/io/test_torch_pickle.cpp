// The PyTorch checkpoint reader without tensors: the restricted unpickler (hand-made pickles: views, globals,
// truncation, cycles), the state dict found inside checkpoint dicts, and the zip container on torch.save's files
// (tests/golden/torch_pickle/, made by scripts/golden/torch_pickle.py with Debian's python3-torch).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/torch_pickle.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using em::io::PickleKind;
using em::io::TorchArchive;
using em::io::TorchPickle;

namespace {

std::string fixture(const std::string& name) {
  return std::string(EM_SOURCE_DIR) + "/tests/golden/torch_pickle/" + name;
}

// Builds pickle bytes opcode by opcode, as torch.save (protocol 2) writes them.
struct Pickle {
  std::string b = "\x80\x02";
  Pickle& op(char c) {
    b += c;
    return *this;
  }
  Pickle& str(const std::string& s) {
    b += 'X';
    const uint32_t n = static_cast<uint32_t>(s.size());
    b.append(reinterpret_cast<const char*>(&n), 4);
    b += s;
    return *this;
  }
  Pickle& integer(int64_t v) {  // LONG1 of 8 bytes: any int64
    b += "\x8a\x08";
    b.append(reinterpret_cast<const char*>(&v), 8);
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    b += "c" + module + "\n" + name + "\n";
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& values) {
    op('(');
    for (int64_t v : values) integer(v);
    return op('t');
  }
  // _rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                 const std::vector<int64_t>& stride, const std::string& storage_class = "FloatStorage") {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage_class).str(key).str("cpu").integer(numel).op('t').op('Q');
    integer(offset).ints(size).ints(stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
  std::string done() const { return b + "."; }
};

// {"w": tensor(...)} as a state dict.
std::string one_tensor(int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                       const std::vector<int64_t>& stride) {
  return Pickle().op('}').str("w").tensor("0", numel, offset, size, stride).op('s').done();
}

TorchPickle parse(const std::string& bytes) { return em::io::parse_torch_pickle(bytes.data(), bytes.size(), "t.pkl"); }

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const em::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { em::io::torch_state_dict(parse(bytes), "t.pkl"); });
}

std::string archive_error(const std::string& path) {
  return error_of([&] {
    TorchArchive archive(path);
    em::io::torch_state_dict(archive.pickle(), path);
    std::vector<char> buffer;
    for (size_t s = 0; s < archive.pickle().storages.size(); ++s) {
      buffer.resize(archive.storage_bytes(s));
      archive.read_storage(s, buffer.data());
    }
  });
}

std::vector<std::string> names_of(const em::io::TorchStateDict& sd) {
  std::vector<std::string> out;
  for (const auto& t : sd.tensors) out.push_back(t.first);
  return out;
}

}  // namespace

TEST_CASE("a torch.save state dict pickle gives each tensor's storage, dtype, size, stride and offset",
          "[io][torch_pickle]") {
  const std::string bytes = Pickle()
                                .op('}')
                                .op('(')
                                .str("a")
                                .tensor("0", 12, 0, {3, 4}, {4, 1})
                                .str("b")
                                .tensor("0", 12, 1, {4, 2}, {1, 4})  // a transposed view with an offset
                                .str("h")
                                .tensor("1", 6, 0, {}, {}, "HalfStorage")
                                .op('u')
                                .done();
  const TorchPickle p = parse(bytes);
  REQUIRE(p.tensors.size() == 3);
  REQUIRE(p.storages.size() == 2);  // "0" named twice is one storage
  CHECK(p.storages[0].key == "0");
  CHECK(p.storages[0].dtype == em::io::TorchDtype::float32);
  CHECK(p.storages[0].numel == 12);
  CHECK(p.storages[0].location == "cpu");
  CHECK(p.storages[1].dtype == em::io::TorchDtype::float16);
  CHECK(p.tensors[1].storage == 0);
  CHECK(p.tensors[1].shape == std::vector<int64_t>{4, 2});
  CHECK(p.tensors[1].strides == std::vector<int64_t>{1, 4});
  CHECK(p.tensors[1].storage_offset == 1);
  CHECK(p.tensors[2].shape.empty());  // a 0-dim scalar
  CHECK(p.tensors[2].numel() == 1);
  const auto sd = em::io::torch_state_dict(p, "t.pkl");
  CHECK(names_of(sd) == std::vector<std::string>{"a", "b", "h"});
  CHECK(sd.unwrapped.empty());
  CHECK_FALSE(sd.stripped_module);
}

TEST_CASE("tensor views that reach outside their storage, overflow or run backwards are refused",
          "[io][torch_pickle]") {
  CHECK_NOTHROW(parse(one_tensor(4, 0, {4}, {1})));
  CHECK_NOTHROW(parse(one_tensor(4, 3, {1}, {1})));
  CHECK_NOTHROW(parse(one_tensor(4, 4, {0}, {1})));  // an empty view may sit at the end
  CHECK_NOTHROW(parse(one_tensor(4, 0, {2, 3}, {0, 1})));  // expanded: stride 0
  CHECK_THAT(parse_error(one_tensor(4, 0, {5}, {1})), Contains("reaches outside storage \"0\" of 4 elements"));
  CHECK_THAT(parse_error(one_tensor(4, 1, {4}, {1})), Contains("reaches outside storage"));
  CHECK_THAT(parse_error(one_tensor(4, 0, {2}, {4})), Contains("reaches outside storage"));
  CHECK_THAT(parse_error(one_tensor(4, 5, {0}, {1})), Contains("reaches outside storage"));
  CHECK_THAT(parse_error(one_tensor(4, -1, {1}, {1})), Contains("negative"));
  CHECK_THAT(parse_error(one_tensor(4, 0, {-1}, {1})), Contains("negative value -1"));
  CHECK_THAT(parse_error(one_tensor(4, 3, {2}, {-1})), Contains("negative value -1"));
  CHECK_THAT(parse_error(one_tensor(4, 0, {int64_t{1} << 62, 4}, {1, 1})), Contains("overflows"));
  CHECK_THAT(parse_error(one_tensor(4, 0, {2, 2}, {INT64_MAX, 1})), Contains("overflows"));
  CHECK_THAT(parse_error(one_tensor(4, 0, {2, 2}, {1})), Contains("has 1 strides"));
  CHECK_THAT(parse_error(one_tensor(4, 0, std::vector<int64_t>(65, 1), std::vector<int64_t>(65, 0))),
             Contains("65 dimensions"));
  CHECK_THAT(parse_error(one_tensor(INT64_MAX / 2, 0, {1}, {1})), Contains("size 4611686018427387903 out of range"));
  // One storage key named with two sizes.
  CHECK_THAT(parse_error(Pickle()
                             .op('}')
                             .op('(')
                             .str("a")
                             .tensor("0", 4, 0, {4}, {1})
                             .str("b")
                             .tensor("0", 8, 0, {8}, {1})
                             .op('u')
                             .done()),
             Contains("storage \"0\" is named as 4 x float32 and as 8 x float32"));
}

TEST_CASE("a pickle that names any global outside the allow-list is refused naming it", "[io][torch_pickle]") {
  const std::string os_system = Pickle().global("os", "system").str("echo hi").op('\x85').op('R').done();
  CHECK_THAT(parse_error(os_system), Contains("not a weights file: it pickles os.system; only tensors, dicts"));
  // Protocol 4's STACK_GLOBAL (module and name pushed as strings), as pickle_protocol=4 writes.
  const std::string eval = Pickle().str("builtins").str("eval").op('\x93').done();
  CHECK_THAT(parse_error(eval), Contains("it pickles builtins.eval"));
  // A torchvision model object (torch.save(model)), a tensor subclass, a quantized tensor.
  CHECK_THAT(parse_error(Pickle().global("torchvision.models.resnet", "ResNet").done()),
             Contains("torchvision.models.resnet.ResNet"));
  CHECK_THAT(parse_error(Pickle().global("torch._utils", "_rebuild_qtensor").done()), Contains("_rebuild_qtensor"));
  CHECK_THAT(parse_error(Pickle().global("torch", "ComplexFloatStorage").done()), Contains("ComplexFloatStorage"));
  // Calling an allowed global the wrong way is refused too.
  CHECK_THAT(parse_error(Pickle().global("torch", "FloatStorage").op(')').op('R').done()),
             Contains("calls the storage class torch.FloatStorage"));
  CHECK_THAT(parse_error(Pickle().global("collections", "OrderedDict").op(']').op('\x85').op('R').done()),
             Contains("OrderedDict with arguments"));
  CHECK_THAT(parse_error(Pickle().str("x").op(')').op('R').done()), Contains("REDUCE calls a str"));
}

TEST_CASE("every truncation of a valid pickle is refused with a clear error", "[io][torch_pickle]") {
  const std::string bytes = one_tensor(4, 0, {2, 2}, {2, 1});
  REQUIRE_NOTHROW(parse(bytes));
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string error = error_of([&] { parse(bytes.substr(0, n)); });
    INFO("cut at " << n << ": " << error);
    CHECK_THAT(error, Contains("t.pkl: corrupt or unsupported pickle") && Contains("truncated"));
  }
}

TEST_CASE("unknown opcodes, stack underflow, a missing memo and bad strings are corrupt-pickle errors",
          "[io][torch_pickle]") {
  CHECK_THAT(parse_error(Pickle().op('I').done()),
             Contains("opcode 0x49 at byte 2") && Contains("not used by torch.save"));
  CHECK_THAT(parse_error(Pickle().op('t').done()), Contains("no MARK"));
  CHECK_THAT(parse_error(Pickle().op('s').done()), Contains("stack underflow"));
  CHECK_THAT(parse_error(Pickle().op('h').op('\x05').done()), Contains("memo 5 was never stored"));
  CHECK_THAT(parse_error(Pickle().op(']').str("k").op('K').op('\x01').op('s').done()),
             Contains("SETITEM: expected a dict, got a list"));
  CHECK_THAT(parse_error(std::string("\x80\x02X\x02\x00\x00\x00\xff\xfe.", 10)), Contains("not UTF-8"));
  CHECK_THAT(parse_error(std::string("\x80\x02\x8a\x09", 4) + std::string(9, '\1') + "."),
             Contains("more than 64 bits"));
  CHECK_THAT(parse_error(std::string("\x80\x07.", 3)), Contains("protocol 7"));
  CHECK_THAT(parse_error(Pickle().op('}').str("n").op('N').op('s').op('0').done()), Contains("opcode 0x30"));
}

TEST_CASE("the state dict is found at the top, under the one key holding tensors, or under a known key",
          "[io][torch_pickle]") {
  auto t = [](Pickle& p, const std::string& key) -> Pickle& { return p.tensor(key, 1, 0, {1}, {1}); };
  {  // {"model": {"w": t}, "epoch": 3}
    Pickle p;
    p.op('}').op('(').str("model").op('}').str("w");
    t(p, "0").op('s').str("epoch").op('K').op('\x03').op('u');
    const auto sd = em::io::torch_state_dict(parse(p.done()), "t.pkl");
    CHECK(sd.unwrapped == "model");
    CHECK(names_of(sd) == std::vector<std::string>{"w"});
  }
  {  // {"optimizer": {"state": {0: {"momentum": t}}}, "state_dict": {"module.w": t}}: a known key wins
    Pickle p;
    p.op('}').op('(').str("optimizer").op('}').str("state").op('}').op('K').op('\0').op('}').str("momentum");
    t(p, "0").op('s').op('s').op('s').str("state_dict").op('}').str("module.w");
    t(p, "1").op('s').op('u');
    const auto sd = em::io::torch_state_dict(parse(p.done()), "t.pkl");
    CHECK(sd.unwrapped == "state_dict");
    CHECK(sd.stripped_module);
    CHECK(names_of(sd) == std::vector<std::string>{"w"});
  }
  {  // {"checkpoint": {"model": {"w": t}}}: unwrapped level by level
    Pickle p;
    p.op('}').str("checkpoint").op('}').str("model").op('}').str("w");
    t(p, "0").op('s').op('s').op('s');
    CHECK(em::io::torch_state_dict(parse(p.done()), "t.pkl").unwrapped == "checkpoint.model");
  }
  {  // {"blocks": [t, {"a": t}]}: names of list items and nested dicts joined with "."
    Pickle p;
    p.op('}').str("blocks").op(']').op('(');
    t(p, "0").op('}').str("a");
    t(p, "1").op('s').op('e').op('s');
    CHECK(names_of(em::io::torch_state_dict(parse(p.done()), "t.pkl")) ==
          std::vector<std::string>{"blocks.0", "blocks.1.a"});
  }
  {  // {"encoder": {"w": t}, "decoder": {"w": t}}: which one is meant is not guessed
    Pickle p;
    p.op('}').op('(').str("encoder").op('}').str("w");
    t(p, "0").op('s').str("decoder").op('}').str("w");
    t(p, "1").op('s').op('u');
    CHECK_THAT(parse_error(p.done()), Contains("tensors sit under several keys (\"encoder\", \"decoder\")") &&
                                          Contains("torch.save(checkpoint[KEY], PATH)"));
  }
  {  // A key given twice keeps the last value, as Python's dict does.
    Pickle p;
    p.op('}').op('(').str("w");
    t(p, "0").str("w");
    t(p, "1").op('u');
    const TorchPickle pickle = parse(p.done());
    const auto sd = em::io::torch_state_dict(pickle, "t.pkl");
    REQUIRE(sd.tensors.size() == 1);
    CHECK(pickle.storages[pickle.tensors[sd.tensors[0].second].storage].key == "1");
  }
  CHECK_THAT(parse_error(Pickle().op(']').done()), Contains("holds a list, not a dict of tensors"));
  CHECK_THAT(parse_error(Pickle().op('}').str("epoch").op('K').op('\x03').op('s').done()),
             Contains("holds no tensors"));
  {  // "a.b" given as a key and as a nested path: one name, two tensors
    Pickle p;
    p.op('}').op('(').str("a.b");
    t(p, "0").str("a").op('}').str("b");
    t(p, "1").op('s').op('u');
    CHECK_THAT(parse_error(p.done()), Contains("two tensors are named \"a.b\""));
  }
}

TEST_CASE("containers that hold themselves, nest too deep or share items too often are refused",
          "[io][torch_pickle]") {
  // {"a": [<the list itself>]}: a cycle through the memo.
  CHECK_THAT(parse_error(Pickle().op('}').str("a").op(']').op('q').op('\0').op('h').op('\0').op('a').op('s').done()),
             Contains("a container holds itself"));
  // 200 nested lists.
  Pickle deep;
  deep.op('}').str("a");
  for (int i = 0; i < 200; ++i) deep.op(']');
  for (int i = 0; i < 199; ++i) deep.op('a');
  deep.op('s');
  CHECK_THAT(parse_error(deep.done()), Contains("nested more than 128 deep"));
  // {"a": L60} with L0 = [tensor], L(k+1) = [Lk, Lk] (each level replaces "a"'s value): 2^60 tensor paths in 1 KB.
  Pickle shared;
  shared.op('}').str("a").op(']').tensor("0", 1, 0, {1}, {1}).op('a').op('q').op('\0').op('s');
  for (int i = 0; i < 60; ++i)
    shared.str("a").op(']').op('(').op('h').op('\0').op('h').op('\0').op('e').op('q').op('\0').op('s');
  CHECK_THAT(parse_error(shared.done()), Contains("share items so often"));
}

TEST_CASE("torch.save files: plain, checkpoint, DataParallel and protocol-4 state dicts are found",
          "[io][torch_pickle]") {
  struct Case {
    const char* file;
    const char* unwrapped;
    bool stripped;
    size_t tensors;
  };
  for (const Case& c : {Case{"state_dict.pth", "", false, 9}, Case{"checkpoint.pth", "model", false, 9},
                        Case{"several_keys.pth", "state_dict", false, 9}, Case{"dataparallel.pth", "", true, 9},
                        Case{"protocol4.pth", "", false, 9}, Case{"parameters.pth", "", false, 2},
                        Case{"views.pth", "", false, 16}}) {
    INFO(c.file);
    TorchArchive archive(fixture(c.file));
    const auto sd = em::io::torch_state_dict(archive.pickle(), archive.what());
    CHECK(sd.unwrapped == c.unwrapped);
    CHECK(sd.stripped_module == c.stripped);
    CHECK(sd.tensors.size() == c.tensors);
    CHECK(names_of(sd).front() == (c.tensors == 9 ? "0.weight" : c.tensors == 2 ? "weight" : "base"));
  }
}

TEST_CASE("the legacy format, TorchScript, pickled objects and other files are refused saying what to do",
          "[io][torch_pickle]") {
  CHECK_THAT(archive_error(fixture("legacy.pth")),
             Contains("legacy format (torch < 1.6, or _use_new_zipfile_serialization=False)") &&
                 Contains("torch.save(torch.load(PATH, map_location=\"cpu\"), NEW_PATH)"));
  CHECK_THAT(archive_error(fixture("torchscript.pt")), Contains("a TorchScript archive (torch.jit.save)"));
  CHECK_THAT(archive_error(fixture("numpy.pth")),
             Contains("numpy.pth: not a weights file: it pickles numpy.core.multiarray._reconstruct; only tensors, "
                      "dicts, lists, numbers and strings are read"));
  CHECK_THAT(archive_error(fixture("ambiguous.pth")), Contains("several keys (\"encoder\", \"decoder\")"));
  CHECK_THAT(archive_error(fixture("big_endian.pth")), Contains("big-endian"));
  CHECK_THAT(archive_error(fixture("expected.json")), Contains("not a PyTorch checkpoint"));
  CHECK_THAT(archive_error(fixture("")), Contains("is a folder"));
  CHECK_THAT(archive_error(fixture("absent.pth")), Contains("absent.pth: no such file"));
  em::test::TempDir dir;
  const std::string fifo = (dir / "fifo.pth").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(archive_error(fifo), Contains("not a regular file"));
  em::io::write_file_atomic(dir / "empty.pth", "");
  CHECK_THAT(archive_error((dir / "empty.pth").string()), Contains("not a PyTorch checkpoint"));
}

TEST_CASE("corrupt and truncated torch.save zips are refused with clear errors", "[io][torch_pickle]") {
  CHECK_THAT(archive_error(fixture("crc.pth")), Contains("corrupt archive: reading data/0 failed (CRC error)"));
  CHECK_THAT(archive_error(fixture("missing_storage.pth")), Contains("storage \"1\" (data/1) is missing"));
  CHECK_THAT(archive_error(fixture("storage_size.pth")),
             Contains("data/1 holds 13 bytes, but the pickle says 3 x float32 (12 bytes)"));
  CHECK_THAT(archive_error(fixture("compressed.pth")), Contains("data/0 is compressed"));

  const std::string whole = em::io::read_file(fixture("state_dict.pth"));
  REQUIRE(archive_error(fixture("state_dict.pth")) == "(no error)");
  for (size_t n : {size_t{3}, size_t{30}, size_t{200}, whole.size() / 2, whole.size() - 23, whole.size() - 1}) {
    const std::string cut = whole.substr(0, n);
    const std::string error = error_of([&] { TorchArchive archive(std::string_view(cut), "cut"); });
    INFO("cut at " << n << ": " << error);
    CHECK_THAT(error, Contains("cut: "));
    CHECK(error != "(no error)");
  }
  // Bytes changed anywhere in the file: refused or read, never a crash (the CRC guards storages and data.pkl).
  for (size_t at = 0; at < whole.size(); at += 7) {
    std::string bad = whole;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    error_of([&] {
      TorchArchive archive(std::string_view(bad), "flipped");
      std::vector<char> buffer;
      for (size_t s = 0; s < archive.pickle().storages.size(); ++s) {
        buffer.resize(archive.storage_bytes(s));
        archive.read_storage(s, buffer.data());
      }
      em::io::torch_state_dict(archive.pickle(), "flipped");
    });
  }
}
