// The segmentation model folder: HF's post-processing (upsample logits, then argmax), a saved folder loading back to
// the same function with a SegformerImageProcessor config, and label maps as 8-bit images.
#include <catch2/catch.hpp>

#include <fstream>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/models/segmenter.hpp"
#include "test_support.hpp"
#include "unit/models/model_test_support.hpp"

using em::io::Json;
using Catch::Contains;

TEST_CASE("label maps equal HF's post_process_semantic_segmentation with target_sizes", "[models][segmentation]") {
  Json golden = em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/segformer_postprocess.json");
  for (const auto& c : golden["cases"]) {
    const auto logits_list = c["logits"].get<std::vector<std::vector<std::vector<float>>>>();
    const int64_t labels = static_cast<int64_t>(logits_list.size()), h = static_cast<int64_t>(logits_list[0].size()),
                  w = static_cast<int64_t>(logits_list[0][0].size());
    torch::Tensor logits = torch::empty({labels, h, w});
    for (int64_t l = 0; l < labels; ++l)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) logits[l][y][x] = logits_list[l][y][x];
    const int64_t th = c["target_size"][0], tw = c["target_size"][1];
    torch::Tensor map = em::models::label_map_at(logits, th, tw);
    REQUIRE(map.sizes() == torch::IntArrayRef({th, tw}));
    const auto expected = c["label_map"].get<std::vector<std::vector<int64_t>>>();
    int64_t wrong = 0;
    for (int64_t y = 0; y < th; ++y)
      for (int64_t x = 0; x < tw; ++x) wrong += map[y][x].item<int64_t>() != expected[y][x];
    CHECK(wrong == 0);
  }
  CHECK_THROWS_WITH(em::models::label_map_at(torch::zeros({1, 2, 3, 4}), 4, 4), Contains("[num_labels, h, w]"));
}

TEST_CASE("a saved segmentation model folder loads back strictly and computes the same logits",
          "[models][segmentation]") {
  em::test::TempDir tmp;
  torch::manual_seed(1);
  auto s = em::models::Segmenter::create(em::test::tiny_segformer_config(), {"road", "sky"}, 48);
  s.save(tmp / "m");
  Json pre = em::io::read_json_file((tmp / "m/preprocessor_config.json").string());
  CHECK(pre["image_processor_type"] == "SegformerImageProcessor");
  CHECK(pre["size"]["height"] == 48);
  auto loaded = em::models::Segmenter::load(tmp / "m");
  CHECK(loaded.config.id2label == std::vector<std::string>{"road", "sky"});
  CHECK(loaded.preprocessor.width == 48);
  loaded.use_channels_last();
  torch::NoGradGuard no_grad;
  s.model->eval();
  torch::Tensor x = torch::randn({2, 3, 48, 48});
  CHECK((s.logits(x, false) - loaded.logits(x, false)).abs().max().item<double>() < 1e-5);

  em::io::write_json_file(tmp / "r/config.json", Json{{"model_type", "resnet"}});
  CHECK_THROWS_WITH(em::models::Segmenter::load(tmp / "r"), Contains("not a segmentation model"));
  CHECK_THROWS_AS(em::models::Segmenter::resolve_config("mit-b9"), em::UsageError);
  CHECK(em::models::Segmenter::resolve_config("").depths == std::vector<int64_t>{3, 4, 18, 3});  // mit-b3
  CHECK(em::models::Segmenter::resolve_config((tmp / "m").string()).hidden_sizes == std::vector<int64_t>{8, 16});
}

TEST_CASE("label maps become one-channel 8-bit images", "[models][segmentation]") {
  torch::Tensor ids = torch::tensor({0, 3, 2, 1, 1, 0}, torch::kInt64).reshape({2, 3});
  auto img = em::models::label_map_image(ids);
  CHECK(img.width == 3);
  CHECK(img.height == 2);
  CHECK(img.channels == 1);
  CHECK(img.pixels == std::vector<uint8_t>{0, 3, 2, 1, 1, 0});
  CHECK_THROWS_AS(em::models::label_map_image(torch::full({2, 2}, 300, torch::kInt64)), em::Error);
}
