// The detection model folder: DetrImageProcessor's preprocessor_config.json (ours, HF's current and the older
// DetrFeatureExtractor form), save/load round trip with threshold and labels, preprocessing at DETR's size, and
// boxes mapped from the padded frame back to original pixels.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/transforms.hpp"
#include "em/tensor/image_tensor.hpp"
#include "em/io/json.hpp"
#include "em/models/detector.hpp"
#include "test_support.hpp"

using em::io::Json;
using em::models::DetrImageProcessorConfig;

TEST_CASE("DetrImageProcessor configs: ours, HF's and facebook/detr's older form", "[models][detector]") {
  auto ours = DetrImageProcessorConfig::for_image_size(800);
  Json j = ours.to_json();
  CHECK(j["size"] == Json{{"shortest_edge", 800}, {"longest_edge", 1333}});
  CHECK(j["do_pad"] == true);
  CHECK(j["do_normalize"] == true);
  CHECK(j["resample"] == 2);
  CHECK(j["format"] == "coco_detection");
  CHECK(j["image_processor_type"] == "DetrImageProcessor");
  auto back = DetrImageProcessorConfig::from_json(j, "x");
  CHECK(back.shortest_edge == 800);
  CHECK(back.longest_edge == 1333);
  CHECK(back.to_json() == j);

  // facebook/detr-resnet-50's preprocessor_config.json (DetrFeatureExtractor).
  auto legacy = DetrImageProcessorConfig::from_json(
      Json::parse(R"({"do_normalize": true, "do_resize": true, "feature_extractor_type": "DetrFeatureExtractor",
                      "format": "coco_detection", "image_mean": [0.485, 0.456, 0.406],
                      "image_std": [0.229, 0.224, 0.225], "max_size": 1333, "size": 800})"),
      "fb");
  CHECK(legacy.shortest_edge == 800);
  CHECK(legacy.longest_edge == 1333);
  CHECK(legacy.to_json()["feature_extractor_type"] == "DetrFeatureExtractor");  // unknown fields kept
  CHECK(legacy.output_size(480, 640) == std::pair<int, int>{800, 1066});
  CHECK(legacy.output_size(100, 200) == std::pair<int, int>{666, 1333});

  auto fixed = DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"height": 320, "width": 480}})"), "f");
  CHECK(fixed.output_size(480, 640) == std::pair<int, int>{320, 480});
  CHECK_THROWS_WITH(DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"max_height": 5}})"), "p.json"),
                    Catch::Contains("p.json: field \"size\""));
  CHECK_THROWS_WITH(DetrImageProcessorConfig::from_json(Json::parse(R"({"size": 0})"), "p.json"),
                    Catch::Contains("expected a positive integer"));
}

TEST_CASE("a processor without a longest edge holds the resized image to the pixel limit", "[models][detector][hostile]") {
  // HF allows "size": {"shortest_edge": 800} alone: a 20000 x 1 image would become 16,000,000 x 800 (12.8 G pixels).
  auto open = DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"shortest_edge": 800}})"), "p.json");
  CHECK(open.longest_edge == 0);
  CHECK_THROWS_WITH(open.output_size(1, 20000),
                    Catch::Contains("would be resized to 16000000x800") && Catch::Contains("--max_image_pixels"));
  // Within the limit it resizes as HF does: 600 x 800 -> 800 x 1066.
  CHECK(open.output_size(600, 800) == std::pair<int, int>{800, 1066});
}

TEST_CASE("relative boxes of the padded frame map to original pixels", "[models][detector]") {
  // A 600x400 (w x h) image resized to 300x200 and padded into a 320x250 batch: the whole image is the relative box
  // (0, 0, 300/320, 200/250), which must become (0, 0, 600, 400).
  auto frame = em::models::Detector::frame_in_original_pixels({250, 320}, {200, 300}, {400, 600});
  CHECK(frame[0] * (200.0 / 250) == Approx(400));
  CHECK(frame[1] * (300.0 / 320) == Approx(600));
  auto alone = em::models::Detector::frame_in_original_pixels({200, 300}, {200, 300}, {400, 600});
  CHECK((alone == std::array<double, 2>{400, 600}));
}

TEST_CASE("a detector folder round-trips: weights, labels, threshold, preprocessing", "[models][detector]") {
  em::test::TempDir dir;
  torch::manual_seed(3);
  auto d = em::models::Detector::create("detr-resnet-18-tiny", {"cat", "dog"}, 96, 0.25);
  CHECK(d.config.threshold == 0.25);
  CHECK(d.preprocessor.shortest_edge == 96);
  CHECK(d.preprocessor.longest_edge == 160);
  d.save(dir.path());
  auto loaded = em::models::Detector::load(dir.path());
  CHECK(loaded.config.threshold == 0.25);
  CHECK(loaded.config.id2label == std::vector<std::string>{"cat", "dog"});
  CHECK(loaded.preprocessor.shortest_edge == 96);

  em::io::Image img;
  img.width = 120;
  img.height = 80;
  img.channels = 3;
  img.pixels.resize(img.size());
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7);
  torch::Tensor x = loaded.preprocess(img);
  // Shortest edge 80 -> 96 (the longest, 144, stays under 160): PIL bilinear resize, then ImageNet normalisation.
  CHECK(x.sizes() == torch::IntArrayRef({3, 96, 144}));
  torch::Tensor want = em::tensor::to_normalized_tensor(em::data::resize_bilinear(img, 144, 96));
  CHECK(torch::equal(x, want));

  torch::NoGradGuard no_grad;
  d.model->eval();
  auto a = d.detect({d.preprocess(img)}, {{80, 120}}, 0.0, false);
  auto b = loaded.detect({loaded.preprocess(img)}, {{80, 120}}, 0.0, false);
  REQUIRE(a.size() == 1);
  CHECK(a[0].scores.size() == 20);  // threshold 0: every query of detr-resnet-18-tiny
  CHECK(a[0].scores == b[0].scores);
  CHECK((a[0].boxes == b[0].boxes));
  CHECK_THROWS_WITH(em::models::Detector::load(dir / "nothing"), Catch::Contains("not a model folder"));
}

TEST_CASE("a config whose labels repeat (facebook/detr-resnet-50's \"N/A\" ids) loads", "[models][detector]") {
  Json j = em::models::DetrConfig::builtin("detr-resnet-18-tiny").to_json();
  j["id2label"] = {{"0", "N/A"}, {"1", "person"}, {"2", "N/A"}};
  j["label2id"] = {{"N/A", 2}, {"person", 1}};  // HF's dict keeps one id per name
  auto c = em::models::DetrConfig::from_json(j, "fb/config.json");
  CHECK(c.id2label == std::vector<std::string>{"N/A", "person", "N/A"});
  CHECK(c.to_json()["label2id"] == j["label2id"]);
  j["label2id"] = {{"N/A", 1}, {"person", 1}};
  CHECK_THROWS_WITH(em::models::DetrConfig::from_json(j, "fb/config.json"), Catch::Contains("label2id"));
  // Training still wants distinct names.
  CHECK_THROWS_AS(c.set_labels({"a", "a"}), em::Error);
}
