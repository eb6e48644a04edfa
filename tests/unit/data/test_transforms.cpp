// Transforms: resizing equals Pillow bit for bit, and classification preprocessing equals torchvision's pipeline.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/transforms.hpp"
#include "em/tensor/image_tensor.hpp"
#include "em/io/json.hpp"

#include <filesystem>

using em::io::Image;
namespace fs = std::filesystem;

namespace {
const fs::path kGolden = fs::path(EM_SOURCE_DIR) / "tests/golden/image";

Image read_as_stored(const std::string& name) {
  std::string path = (kGolden / name).string();
  int channels = name.rfind("gray", 0) == 0 ? 1 : 3;
  return em::io::read_image(path, channels);
}
}  // namespace

TEST_CASE("bilinear and nearest resizing equal Pillow's Image.resize exactly", "[data][transforms]") {
  em::io::Json golden = em::io::read_json_file((kGolden / "golden.json").string());
  int cases = 0;
  for (const auto& c : golden["resize"]) {
    Image input = read_as_stored(c["input"].get<std::string>());
    Image expected = read_as_stored(c["output"].get<std::string>());
    int w = c["width"].get<int>(), h = c["height"].get<int>();
    Image got = c["method"] == "bilinear" ? em::data::resize_bilinear(input, w, h) : em::data::resize_nearest(input, w, h);
    INFO(c["output"].get<std::string>());
    REQUIRE(got.width == w);
    REQUIRE(got.height == h);
    REQUIRE(got.channels == input.channels);
    int max_diff = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i)
      max_diff = std::max(max_diff, std::abs(int(got.pixels[i]) - int(expected.pixels[i])));
    CHECK(max_diff == 0);
    ++cases;
  }
  CHECK(cases == 24);
}

TEST_CASE("resizing to the same size copies, and bad sizes are refused", "[data][transforms]") {
  Image input = read_as_stored("rgb_37x23.png");
  CHECK(em::data::resize(input, 37, 23).pixels == input.pixels);
  CHECK_THROWS_AS(em::data::resize(input, 0, 5), em::Error);
  CHECK_THROWS_AS(em::data::resize_nearest(input, 5, -1), em::Error);
}

TEST_CASE("classification preprocessing equals torchvision Resize + ToTensor + Normalize(ImageNet)",
          "[data][transforms]") {
  em::io::Json golden = em::io::read_json_file((kGolden / "golden.json").string());
  for (const auto& c : golden["preprocess_classification"]) {
    INFO(c["input"].get<std::string>());
    Image input = read_as_stored(c["input"].get<std::string>());  // the gray one is converted to RGB inside
    torch::Tensor got = em::tensor::preprocess_classification(input, c["input_size"].get<int>());
    std::vector<int64_t> shape = c["shape"].get<std::vector<int64_t>>();
    REQUIRE(got.sizes().vec() == shape);
    torch::Tensor expected = torch::tensor(c["values"].get<std::vector<float>>()).reshape(shape);
    CHECK(torch::allclose(got, expected, 0, 1e-5));
  }
}

TEST_CASE("horizontal flip mirrors columns and to_rgb replicates gray / drops alpha", "[data][transforms]") {
  Image image{3, 2, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
  Image flipped = em::data::horizontal_flip(image);
  CHECK(flipped.pixels == std::vector<uint8_t>{5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8});
  CHECK(em::data::horizontal_flip(flipped).pixels == image.pixels);

  Image gray{2, 1, 1, {10, 20}};
  CHECK(em::data::to_rgb(gray).pixels == std::vector<uint8_t>{10, 10, 10, 20, 20, 20});
  Image rgba{1, 1, 4, {1, 2, 3, 4}};
  CHECK(em::data::to_rgb(rgba).pixels == std::vector<uint8_t>{1, 2, 3});
}

TEST_CASE("normalized tensors are channel-first (x/255 - mean)/std, and stacking checks shapes",
          "[data][transforms]") {
  Image image{2, 1, 3, {0, 128, 255, 10, 20, 30}};
  torch::Tensor t = em::tensor::to_normalized_tensor(image);
  REQUIRE(t.sizes().vec() == std::vector<int64_t>{3, 1, 2});
  CHECK(t[0][0][0].item<float>() == Approx((0 / 255.0 - 0.485) / 0.229));
  CHECK(t[1][0][0].item<float>() == Approx((128 / 255.0 - 0.456) / 0.224));
  CHECK(t[2][0][1].item<float>() == Approx((30 / 255.0 - 0.406) / 0.225));

  torch::Tensor batch = em::tensor::stack_tensors({t, t * 2});
  CHECK(batch.sizes().vec() == std::vector<int64_t>{2, 3, 1, 2});
  CHECK(torch::equal(batch, torch::stack({t, t * 2})));
  CHECK_THROWS_AS(em::tensor::stack_tensors({t, torch::zeros({3, 2, 2})}), em::Error);
}
