// The safetensors reader/writer: exact format on write, everything validated on read, reference files readable.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstring>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/tensor/safetensors.hpp"
#include "test_support.hpp"

using em::io::Json;
using em::tensor::TensorMap;
using Catch::Matchers::Contains;

namespace {

// A file with the given header (any text: malformed headers are the point) and `buffer_bytes` zero bytes of data.
std::string raw_file(const std::string& header, size_t buffer_bytes, char fill = 0) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(buffer_bytes, fill);
}

std::string with_header(const Json& header, size_t buffer_bytes, char fill = 0) {
  return raw_file(em::io::dump_json(header), buffer_bytes, fill);
}

Json entry(const std::string& dtype, std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
  return Json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

std::string error_of(const std::string& bytes) {
  try {
    em::tensor::load_safetensors_from_bytes(bytes, "bad.safetensors");
  } catch (const em::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata", "[io][safetensors]") {
  torch::manual_seed(0);
  TensorMap in;
  in["f32"] = torch::randn({3, 4});
  in["f64"] = torch::randn({2, 2}, torch::kFloat64);
  in["f16"] = torch::randn({5}).to(torch::kFloat16);
  in["bf16"] = torch::randn({2, 3}).to(torch::kBFloat16);
  in["i64"] = torch::arange(-3, 4, torch::kInt64);
  in["i32"] = torch::arange(0, 6, torch::kInt32).reshape({2, 3});
  in["i16"] = torch::tensor({-7, 9}, torch::kInt16);
  in["i8"] = torch::tensor({-128, 127}, torch::kInt8);
  in["u8"] = torch::tensor({0, 255, 3}, torch::kUInt8);
  in["bool"] = torch::tensor({true, false, true});
  in["scalar"] = torch::tensor(2.5);
  in["empty"] = torch::zeros({0, 3});
  in["transposed"] = torch::randn({3, 5}).t();  // non-contiguous input is written contiguous
  in["channels_last"] = torch::randn({2, 3, 4, 5}).contiguous(torch::MemoryFormat::ChannelsLast);

  em::test::TempDir dir;
  const auto path = dir / "t.safetensors";
  em::tensor::save_safetensors(path, in, {{"format", "pt"}, {"step", "42"}});
  auto file = em::tensor::read_safetensors(path.string());
  REQUIRE(file.tensors.size() == in.size());
  CHECK(file.metadata == em::io::SafetensorsMetadata{{"format", "pt"}, {"step", "42"}});
  for (const auto& [name, t] : in) {
    INFO(name);
    const auto& back = file.tensors.at(name);
    CHECK(back.scalar_type() == t.scalar_type());
    CHECK(back.sizes() == t.sizes());
    CHECK(back.is_contiguous());
    CHECK(torch::equal(back, t));
  }
  CHECK(em::tensor::load_safetensors(path.string()).size() == in.size());
  // The written file leaves nothing else behind (the atomic write's temp file is renamed).
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);
}

TEST_CASE("safetensors writer follows the format: LE length, space padding to 8, aligned contiguous offsets",
          "[io][safetensors]") {
  TensorMap in{{"a_u8", torch::ones({3}, torch::kUInt8)},
               {"b_f64", torch::ones({2}, torch::kFloat64)},
               {"c_f16", torch::ones({1}, torch::kFloat16)},
               {"d_f32", torch::ones({5})}};
  const std::string bytes = em::tensor::safetensors_to_bytes(in);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  REQUIRE(n % 8 == 0);
  REQUIRE(8 + n <= bytes.size());
  const std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  const auto last = header.find_last_not_of(' ');
  CHECK(header[last] == '}');
  CHECK(n - last - 1 < 8);
  Json h = em::io::parse_json(header, "header");
  CHECK(h["__metadata__"] == Json{{"format", "pt"}});
  // Largest elements first: every tensor is aligned to its element size, and the ranges tile the buffer.
  uint64_t expected = 0;
  for (const char* name : {"b_f64", "d_f32", "c_f16", "a_u8"}) {
    INFO(name);
    const auto offsets = h.at(name).at("data_offsets").get<std::vector<uint64_t>>();
    CHECK(offsets[0] == expected);
    CHECK(offsets[0] % in.at(name).element_size() == 0);
    expected = offsets[1];
  }
  CHECK(8 + n + expected == bytes.size());
  CHECK(h.at("b_f64").at("dtype") == "F64");
  CHECK(h.at("a_u8").at("shape") == Json::array({3}));
}

TEST_CASE("safetensors reader reads the reference's fixture files", "[io][safetensors]") {
  auto dir = em::test::shared_path("fixtures/detr-tiny");
  if (!dir) return;
  auto file = em::tensor::read_safetensors((*dir / "input.safetensors").string());
  CHECK(file.metadata.at("format") == "pt");
  REQUIRE(file.tensors.count("pixel_values"));
  REQUIRE(file.tensors.count("pixel_mask"));
  CHECK(file.tensors.at("pixel_values").sizes() == torch::IntArrayRef({2, 3, 96, 128}));
  CHECK(file.tensors.at("pixel_mask").scalar_type() == torch::kInt64);
  // The README's rule: 1 = valid, 0 = padding; image 2 is valid in columns 0..95 only.
  const auto mask = file.tensors.at("pixel_mask");
  CHECK(mask[1].slice(1, 96).sum().item<int64_t>() == 0);
  CHECK(mask[0].sum().item<int64_t>() == 96 * 128);
  // Our writer's bytes read back equal (header layout may differ from the reference writer's, values may not).
  auto again = em::tensor::load_safetensors_from_bytes(em::tensor::safetensors_to_bytes(file.tensors), "again");
  for (const auto& [name, t] : file.tensors) CHECK(torch::equal(again.at(name), t));
}

TEST_CASE("safetensors reader rejects malformed files with a message naming the file, tensor and problem",
          "[io][safetensors]") {
  CHECK_THAT(error_of("abc"), Contains("bad.safetensors") && Contains("8-byte header length is missing"));
  CHECK_THAT(error_of(raw_file("{}", 0).substr(0, 9)), Contains("truncated") && Contains("header length 2"));
  {
    std::string huge(8, '\0');
    uint64_t n = 1ull << 40;
    std::memcpy(huge.data(), &n, 8);
    CHECK_THAT(error_of(huge), Contains("exceeds the format's limit"));
  }
  CHECK_THAT(error_of(raw_file("[1, 2]  ", 0)), Contains("does not start with a JSON object"));
  CHECK_THAT(error_of(raw_file("{\"a\": {\"dtype\": ", 0)), Contains("invalid safetensors header JSON"));
  CHECK_THAT(error_of(with_header({{"w", entry("F99", {2}, 0, 8)}}, 8)),
             Contains("tensor \"w\"") && Contains("unknown dtype \"F99\""));
  CHECK_THAT(error_of(with_header({{"w", entry("U32", {2}, 0, 8)}}, 8)),
             Contains("tensor \"w\"") && Contains("LibTorch 1.13 has no such type"));
  CHECK_THAT(error_of(with_header({{"w", entry("F32", {2, 2}, 0, 12)}}, 12)),
             Contains("tensor \"w\"") && Contains("needs 16 bytes but data_offsets [0, 12] hold 12"));
  CHECK_THAT(error_of(with_header({{"w", entry("F32", {2}, 0, 8)}}, 4)),
             Contains("tensor \"w\"") && Contains("run past the end"));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}, 12)),
             Contains("tensor \"b\"") && Contains("overlap tensor \"a\""));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {1}, 0, 4)}, {"b", entry("F32", {1}, 8, 12)}}, 12)),
             Contains("tensor \"b\"") && Contains("hole of 4 bytes"));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {1}, 4, 8)}}, 8)), Contains("hole of 4 bytes after the header"));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {1}, 0, 4)}}, 6)), Contains("2 trailing bytes"));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {1}, 4, 0)}}, 4)), Contains("end before begin"));
  CHECK_THAT(error_of(with_header({{"a", entry("F32", {-1}, 0, 4)}}, 4)), Contains("non-negative integers"));
  CHECK_THAT(error_of(with_header({{"a", Json{{"dtype", "F32"}, {"shape", {1}}}}}, 4)),
             Contains("tensor \"a\"") && Contains("missing \"data_offsets\""));
  CHECK_THAT(error_of(with_header({{"__metadata__", {{"format", 1}}}}, 0)), Contains("\"__metadata__\".\"format\""));
  CHECK_THAT(error_of(with_header({{"m", entry("BOOL", {2}, 0, 2)}}, 2, 2)), Contains("BOOL data"));
  CHECK_THAT(error_of(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                               R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                               2)),
             Contains("key \"a\" appears twice"));

  // Through a path, the message starts with that path.
  em::test::TempDir dir;
  const auto path = dir / "broken.safetensors";
  em::io::write_file_atomic(path, "short");
  CHECK_THROWS_WITH(em::tensor::load_safetensors(path.string()), Contains(path.string() + ": not a safetensors file"));
  CHECK_THROWS_WITH(em::tensor::load_safetensors((dir / "absent.safetensors").string()), Contains("cannot open"));
}

TEST_CASE("safetensors reader accepts an empty file table and zero-size tensors", "[io][safetensors]") {
  auto t = em::tensor::load_safetensors_from_bytes(with_header(Json::object(), 0), "x");
  CHECK(t.empty());
  t = em::tensor::load_safetensors_from_bytes(
      with_header({{"e", entry("F32", {0, 4}, 0, 0)}, {"f", entry("F32", {1}, 0, 4)}}, 4), "x");
  CHECK(t.at("e").sizes() == torch::IntArrayRef({0, 4}));
  CHECK(t.at("f").sizes() == torch::IntArrayRef({1}));
}

TEST_CASE("safetensors writer refuses reserved names and dtypes the format lacks", "[io][safetensors]") {
  CHECK_THROWS_WITH(em::tensor::safetensors_to_bytes({{"__metadata__", torch::ones({1})}}), Contains("reserved"));
  CHECK_THROWS_WITH(em::tensor::safetensors_to_bytes({{"z", torch::ones({1}, torch::kComplexFloat)}}),
                    Contains("tensor \"z\"") && Contains("no safetensors name"));
}

TEST_CASE("read tensors are copy-on-write views: writing one never changes the file", "[io][safetensors]") {
  em::test::TempDir dir;
  const auto path = dir / "w.safetensors";
  em::tensor::save_safetensors(path, {{"w", torch::arange(6, torch::kFloat32)}});
  const std::string before = em::io::read_file(path.string());
  {
    auto tensors = em::tensor::load_safetensors(path.string());
    tensors.at("w").mul_(10);
    CHECK(tensors.at("w")[5].item<float>() == 50.0f);
  }
  CHECK(em::io::read_file(path.string()) == before);
  CHECK(em::tensor::load_safetensors(path.string()).at("w")[5].item<float>() == 5.0f);
}

TEST_CASE("a FIFO or device named .safetensors is refused at once, not read", "[io][safetensors]") {
  em::test::TempDir dir;
  const auto fifo = dir / "pipe.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(em::tensor::load_safetensors(fifo.string()), Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(em::tensor::load_safetensors("/dev/zero"), Catch::Contains("not a regular file"));
}
