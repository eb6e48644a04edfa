// Transforms: resizing equals Pillow bit for bit, and classification preprocessing equals torchvision's pipeline.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/transforms.hpp"
#include "em/tensor/image_tensor.hpp"
#include "em/io/json.hpp"

#include <filesystem>
#include <map>

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

// Goldens: /usr/bin/python3 scripts/golden/image_transforms.py (Pillow 9.4's Image.resize, every filter).
TEST_CASE("resizing with each PIL filter equals Pillow's Image.resize exactly", "[data][transforms]") {
  em::io::Json golden = em::io::read_json_file((kGolden / "golden.json").string());
  std::map<std::string, int> cases;
  for (const auto& c : golden["resize"]) {
    Image input = read_as_stored(c["input"].get<std::string>());
    Image expected = read_as_stored(c["output"].get<std::string>());
    int w = c["width"].get<int>(), h = c["height"].get<int>();
    const std::string method = c["method"].get<std::string>();
    em::data::Filter filter = em::data::Filter::bilinear;
    for (int code = 0; code <= 5; ++code)
      if (method == em::data::filter_name(em::data::pil_filter(code))) filter = em::data::pil_filter(code);
    REQUIRE(em::data::filter_name(filter) == method);
    Image got = em::data::resize(input, w, h, filter);
    INFO(c["output"].get<std::string>());
    REQUIRE(got.width == w);
    REQUIRE(got.height == h);
    REQUIRE(got.channels == input.channels);
    int max_diff = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i)
      max_diff = std::max(max_diff, std::abs(int(got.pixels[i]) - int(expected.pixels[i])));
    CHECK(max_diff == 0);
    // The older entry points give the same pixels.
    if (filter == em::data::Filter::bilinear) CHECK(em::data::resize_bilinear(input, w, h).pixels == got.pixels);
    if (filter == em::data::Filter::nearest) CHECK(em::data::resize_nearest(input, w, h).pixels == got.pixels);
    ++cases[method];
  }
  // 15 sizes (up, down, odd, 1-pixel sides; RGB and gray) for each of the six filters.
  CHECK(cases == std::map<std::string, int>{{"bicubic", 15}, {"bilinear", 15}, {"box", 15}, {"hamming", 15},
                                            {"lanczos", 15}, {"nearest", 15}});
}

TEST_CASE("PIL filter codes outside 0..5 are refused, and crop takes a box inside the image", "[data][transforms]") {
  CHECK(em::data::pil_filter(3) == em::data::Filter::bicubic);
  CHECK_THROWS_WITH(em::data::pil_filter(6, "p.json: field \"resample\""),
                    Catch::Contains("p.json: field \"resample\"") && Catch::Contains("got 6"));
  Image image{3, 2, 1, {1, 2, 3, 4, 5, 6}};
  CHECK(em::data::crop(image, 1, 1, 2, 1).pixels == std::vector<uint8_t>{5, 6});
  CHECK(em::data::crop(image, 0, 0, 3, 2).pixels == image.pixels);
  CHECK_THROWS_AS(em::data::crop(image, 2, 0, 2, 1), em::Error);
  CHECK_THROWS_AS(em::data::crop(image, 0, 0, 0, 1), em::Error);
}

TEST_CASE("resizing to the same size copies, and bad sizes are refused", "[data][transforms]") {
  Image input = read_as_stored("rgb_37x23.png");
  CHECK(em::data::resize(input, 37, 23).pixels == input.pixels);
  CHECK(em::data::resize(input, 37, 23, em::data::Filter::lanczos).pixels == input.pixels);
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
