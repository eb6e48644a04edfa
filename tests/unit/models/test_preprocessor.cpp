// preprocessor_config.json: ViTImageProcessor fields written and read back, HF variants read, bad values named.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/models/preprocessor.hpp"

using em::io::Json;
using em::models::PreprocessorConfig;
using Catch::Matchers::Contains;

TEST_CASE("classification preprocessor config is ViTImageProcessor-shaped and round-trips", "[models][preprocessor]") {
  auto p = PreprocessorConfig::classification(28);
  Json j = p.to_json();
  CHECK(j["image_processor_type"] == "ViTImageProcessor");
  CHECK(j["size"] == Json{{"height", 28}, {"width", 28}});
  CHECK(j["resample"] == 2);
  CHECK(j["do_rescale"] == true);
  CHECK(j["rescale_factor"].get<double>() == Approx(1.0 / 255.0));
  CHECK(j["image_mean"] == Json::array({0.485, 0.456, 0.406}));
  CHECK(j["image_std"] == Json::array({0.229, 0.224, 0.225}));
  CHECK(PreprocessorConfig::from_json(j, "p.json").to_json() == j);
}

TEST_CASE("segmentation preprocessor config is SegformerImageProcessor-shaped and round-trips",
          "[models][preprocessor][segmentation]") {
  auto p = PreprocessorConfig::segmentation(512);
  Json j = p.to_json();
  CHECK(j["image_processor_type"] == "SegformerImageProcessor");
  CHECK(j["size"] == Json{{"height", 512}, {"width", 512}});
  CHECK(j["resample"] == 2);
  CHECK(j["do_reduce_labels"] == false);
  CHECK(j["image_mean"] == Json::array({0.485, 0.456, 0.406}));
  CHECK(PreprocessorConfig::from_json(j, "p.json").to_json() == j);
  // nvidia/segformer-b0-finetuned-ade-512-512's file (the older feature-extractor fields).
  Json ade{{"do_normalize", true}, {"do_resize", true}, {"feature_extractor_type", "SegformerFeatureExtractor"},
           {"image_mean", {0.485, 0.456, 0.406}}, {"image_std", {0.229, 0.224, 0.225}}, {"reduce_labels", true},
           {"resample", 2}, {"size", 512}};
  auto q = PreprocessorConfig::from_json(ade, "ade.json");
  CHECK(q.height == 512);
  CHECK(q.width == 512);
  CHECK(q.extra["reduce_labels"] == true);
}

TEST_CASE("preprocessor config reads HF variants and keeps fields it does not interpret", "[models][preprocessor]") {
  // microsoft/resnet-50's ConvNextImageProcessor file.
  Json convnext{{"crop_pct", 0.875},     {"do_normalize", true},        {"do_resize", true},
                {"image_mean", {0.485, 0.456, 0.406}}, {"image_std", {0.229, 0.224, 0.225}},
                {"image_processor_type", "ConvNextImageProcessor"}, {"resample", 3},
                {"size", {{"shortest_edge", 224}}}};
  auto p = PreprocessorConfig::from_json(convnext, "p.json");
  CHECK(p.shortest_edge == 224);  // ConvNext's rule (test_image_processors.cpp): resize, then a 224 x 224 crop
  CHECK(p.height == 224);
  CHECK(p.width == 224);
  CHECK(p.resample == 3);
  CHECK(p.crop_pct == 0.875);
  CHECK(p.extra == Json::object());
  CHECK(p.to_json()["crop_pct"] == 0.875);
  CHECK(p.to_json()["size"] == Json{{"shortest_edge", 224}});
  CHECK(PreprocessorConfig::from_json({{"size", 96}, {"image_mean", 0.5}, {"image_std", {0.5, 0.5, 0.5}}}, "p")
            .image_mean.size() == 3);
}

TEST_CASE("preprocessor config errors name the field and the value", "[models][preprocessor]") {
  auto error_of = [](const Json& j) {
    try {
      PreprocessorConfig::from_json(j, "pre.json");
    } catch (const em::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK_THAT(error_of({{"size", {{"height", 0}, {"width", 4}}}}), Contains("pre.json") && Contains("size.height"));
  CHECK_THAT(error_of({{"size", "big"}}), Contains("\"size\"") && Contains("\"big\""));
  CHECK_THAT(error_of({{"resample", 9}}), Contains("\"resample\"") && Contains("9"));
  CHECK_THAT(error_of({{"image_std", {0.2, 0.0, 0.2}}}), Contains("\"image_std\"[1]"));
  CHECK_THAT(error_of({{"image_mean", {0.5, 0.5}}}), Contains("\"image_mean\" (2 values)"));
  CHECK_THAT(error_of({{"do_resize", "yes"}}), Contains("\"do_resize\""));
}
