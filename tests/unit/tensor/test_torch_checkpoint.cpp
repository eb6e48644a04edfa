// Tensors of torch.save files: the values Python's torch wrote (tests/golden/torch_pickle/expected.json, made by
// scripts/golden/torch_pickle.py with Debian's python3-torch), views made tensors of their own, every dtype.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/tensor/torch_pickle.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;

namespace {

std::string fixture(const std::string& name) {
  return std::string(EM_SOURCE_DIR) + "/tests/golden/torch_pickle/" + name;
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return "float64";
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kInt16: return "int16";
    case torch::kInt8: return "int8";
    case torch::kUInt8: return "uint8";
    case torch::kBool: return "bool";
    default: return "?";
  }
}

}  // namespace

TEST_CASE("torch.save files read with the names, dtypes, shapes and values torch wrote", "[tensor][torch_pickle]") {
  const em::io::Json expected = em::io::read_json_file(fixture("expected.json"));
  REQUIRE(expected.size() >= 7);
  for (const auto& [file, want] : expected.items()) {
    INFO(file);
    const em::tensor::TorchCheckpoint got = em::tensor::read_torch_checkpoint(fixture(file));
    CHECK(got.unwrapped == want.at("unwrapped").get<std::string>());
    CHECK(got.stripped_module == want.value("stripped_module", false));
    REQUIRE(got.tensors.size() == want.at("tensors").size());
    for (const auto& t : want.at("tensors")) {
      const std::string name = t.at("name");
      INFO(name);
      REQUIRE(got.tensors.count(name));
      const torch::Tensor& v = got.tensors.at(name);
      CHECK(dtype_name(v.scalar_type()) == t.at("dtype").get<std::string>());
      CHECK(v.sizes().vec() == t.at("shape").get<std::vector<int64_t>>());
      CHECK(v.is_contiguous());
      // Every value exactly: float64 holds each of these dtypes' values without rounding (int64 up to 2^53 here).
      const std::vector<double> values = t.at("values").get<std::vector<double>>();
      const torch::Tensor flat = v.to(torch::kFloat64).flatten();
      REQUIRE(flat.numel() == static_cast<int64_t>(values.size()));
      for (size_t i = 0; i < values.size(); ++i) CHECK(flat[static_cast<int64_t>(i)].item<double>() == values[i]);
    }
  }
}

TEST_CASE("views of a shared storage become tensors that own just their elements", "[tensor][torch_pickle]") {
  const auto tensors = em::tensor::read_torch_checkpoint(fixture("views.pth")).tensors;
  const torch::Tensor& base = tensors.at("base");
  for (const char* view : {"transposed", "offset", "narrow", "strided", "expanded"}) {
    INFO(view);
    const torch::Tensor& t = tensors.at(view);
    CHECK(t.is_contiguous());
    CHECK(t.storage().nbytes() == static_cast<size_t>(t.numel() * t.element_size()));
    CHECK_FALSE(t.storage().is_alias_of(base.storage()));
  }
  CHECK(torch::equal(tensors.at("transposed"), base.t()));
  CHECK(torch::equal(tensors.at("narrow"), base.slice(1, 2, 5)));
  // Writing into one leaves the others as they were.
  tensors.at("offset").fill_(-1);
  CHECK(base[1][0].item<float>() == 6);
  CHECK(tensors.at("scalar").dim() == 0);
  CHECK(tensors.at("empty").sizes().vec() == std::vector<int64_t>{0, 3});
}

TEST_CASE("bool storages with bytes other than 0 and 1 are refused", "[tensor][torch_pickle]") {
  CHECK_THROWS_WITH(em::tensor::read_torch_checkpoint(fixture("bad_bool.pth")),
                    Contains("bad_bool.pth: storage \"0\" (bool) holds bytes other than 0 and 1"));
}

TEST_CASE("reading from bytes equals reading the file, and refusals name the source", "[tensor][torch_pickle]") {
  const std::string bytes = em::io::read_file(fixture("checkpoint.pth"));
  const auto from_bytes = em::tensor::read_torch_checkpoint_from_bytes(bytes, "upload").tensors;
  const auto from_file = em::tensor::read_torch_checkpoint(fixture("checkpoint.pth")).tensors;
  REQUIRE(from_bytes.size() == from_file.size());
  for (const auto& [name, t] : from_file) CHECK(torch::equal(from_bytes.at(name), t));
  CHECK_THROWS_WITH(em::tensor::read_torch_checkpoint_from_bytes(bytes.substr(0, 100), "upload"),
                    Contains("upload: "));
}

TEST_CASE("loading a checkpoint says which key held the state dict and that module. was stripped",
          "[tensor][torch_pickle]") {
  const std::string log = em::test::stderr_of([] {
    CHECK(em::tensor::load_torch_checkpoint(fixture("checkpoint.pth")).count("0.weight"));
    CHECK(em::tensor::load_torch_checkpoint(fixture("dataparallel.pth")).count("0.weight"));
  });
  CHECK_THAT(log, Contains("checkpoint.pth: read the state dict under the checkpoint's key \"model\" (9 tensors)"));
  CHECK_THAT(log, Contains("dataparallel.pth: tensor names lose their \"module.\" prefix"));
}
