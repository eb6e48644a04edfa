// Segmentation predictions: the HF pipeline's response shape (one 0/255 PNG mask per class present, ascending id,
// score null) at the original image size, label map files named after their inputs, and Predictor::load dispatch.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/infer/segmentation_predictor.hpp"
#include "em/io/base64.hpp"
#include "em/io/file.hpp"
#include "../data/segmentation_test_data.hpp"
#include "unit/models/model_test_support.hpp"

#include <algorithm>

namespace fs = std::filesystem;
using em::test::make_image;
using Catch::Contains;

namespace {

em::io::Image decode_mask(const em::io::Json& entry) {
  std::string png = em::io::base64_decode(entry.at("mask").get<std::string>());
  REQUIRE(em::io::image_info(png, "mask").channels == 1);
  return em::io::decode_image(png, "mask", 1);
}

// A tiny SegFormer model folder with labels a, b, c.
fs::path tiny_model(const em::test::TempDir& tmp) {
  em::models::SegformerConfig c = em::test::tiny_segformer_config();
  torch::manual_seed(3);
  auto segmenter = em::models::Segmenter::create(c, {"a", "b", "c"}, 32);
  segmenter.save(tmp / "model");
  return tmp / "model";
}

}  // namespace

TEST_CASE("a segmentation response lists each present class once, ascending, with a 0/255 mask", "[infer][segmentation]") {
  auto map = make_image(3, 2, 1, [](int y, int x, int) { return static_cast<uint8_t>(y == 0 && x < 2 ? 2 : 0); });
  auto response = em::infer::segmentation_response(map, {"a", "b", "c"});
  REQUIRE(response.size() == 2);
  CHECK(response[0]["label"] == "a");
  CHECK(response[1]["label"] == "c");
  CHECK(response[0]["score"].is_null());
  CHECK(response[0].begin().key() == "score");  // {"score", "label", "mask"} as HF's pipeline
  auto c = decode_mask(response[1]);
  CHECK(c.width == 3);
  CHECK(c.height == 2);
  CHECK(c.pixels == std::vector<uint8_t>{255, 255, 0, 0, 0, 0});
  CHECK(decode_mask(response[0]).pixels == std::vector<uint8_t>{0, 0, 255, 255, 255, 255});
  auto bad = make_image(1, 1, 1, [](int, int, int) { return 7; });
  CHECK_THROWS_AS(em::infer::segmentation_response(bad, {"a"}), em::Error);
}

TEST_CASE("label map files are named after their inputs and never overwrite one", "[infer][segmentation]") {
  using em::infer::label_map_file_names;
  em::test::TempDir tmp;
  CHECK(label_map_file_names({}, 3, tmp.path()) == std::vector<std::string>{"0.png", "1.png", "2.png"});
  CHECK(label_map_file_names({"x/street.jpg", "y/road.png"}, 2, tmp / "out") ==
        std::vector<std::string>{"street.png", "road.png"});
  CHECK_THROWS_WITH(label_map_file_names({"x/street.jpg", "y/street.png"}, 2, tmp / "out"),
                    Contains("x/street.jpg and y/street.png would both be written as street.png"));
  em::io::write_file_atomic(tmp / "in/photo.png", "x");
  CHECK_THROWS_WITH(label_map_file_names({(tmp / "in/photo.png").string()}, 1, tmp / "in"),
                    Contains("would overwrite the input image"));
}

TEST_CASE("a segmentation model folder predicts masks and label maps at the original image size",
          "[infer][segmentation]") {
  em::test::TempDir tmp;
  const fs::path model = tiny_model(tmp);
  auto predictor = em::infer::Predictor::load(model.string(), {});
  REQUIRE(predictor->algo() == em::Algo::segmentation);
  auto image = make_image(37, 23, 3, [](int y, int x, int c) { return static_cast<uint8_t>((x * 7 + y * 3 + c * 50) % 256); });
  const std::string png = em::io::encode_png(image);
  auto results = predictor->predict_bytes({png, png}, 1);
  REQUIRE(results.size() == 2);
  CHECK(results[0] == results[1]);
  REQUIRE(results[0].size() >= 1);
  std::vector<int> covered(37 * 23, 0);
  for (const auto& entry : results[0]) {
    auto mask = decode_mask(entry);
    CHECK(mask.width == 37);
    CHECK(mask.height == 23);
    for (size_t i = 0; i < mask.pixels.size(); ++i) covered[i] += mask.pixels[i] == 255;
  }
  CHECK(std::all_of(covered.begin(), covered.end(), [](int n) { return n == 1; }));  // the masks partition the image

  const auto& seg = dynamic_cast<const em::infer::SegmentationPredictor&>(*predictor);
  auto with_files = seg.predict_bytes_to_folder({png}, {"x.png"}, tmp / "maps");
  CHECK(with_files[0] == results[0]);
  auto map = em::io::read_image((tmp / "maps/x.png").string(), 1);
  CHECK(map.width == 37);
  CHECK(em::infer::segmentation_response(map, seg.labels()) == results[0]);
}
