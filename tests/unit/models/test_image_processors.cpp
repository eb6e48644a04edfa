// Hub image processors as transformers' PIL-based processors run them: ConvNext's shortest edge + crop_pct (the
// microsoft/resnet-50 file), the PIL filter of `resample`, the size forms, and what emkit refuses instead of ignoring.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/segmentation_dataset.hpp"
#include "em/data/transforms.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/metrics/segmentation_io.hpp"
#include "em/models/detector.hpp"
#include "em/models/preprocessor.hpp"
#include "em/tensor/image_tensor.hpp"
#include "em/train/segmentation_task.hpp"
#include "../data/segmentation_test_data.hpp"
#include "test_support.hpp"

#include <torch/torch.h>

#include <filesystem>

using em::io::Json;
using em::models::PreprocessorConfig;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Image.TRANSPOSE: pixel (x, y) becomes (y, x).
em::io::Image transpose(const em::io::Image& in) {
  em::io::Image out;
  out.width = in.height;
  out.height = in.width;
  out.channels = in.channels;
  out.pixels.resize(out.size());
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < in.channels; ++c) out.at(y, x, c) = in.at(x, y, c);
  return out;
}

// An unordered view (ordered_json compares key order too).
nlohmann::json unordered(const Json& j) { return nlohmann::json::parse(j.dump()); }

std::string error_of(const Json& j) {
  try {
    PreprocessorConfig::from_json(j, "pre.json");
  } catch (const em::Error& e) {
    return e.what();
  }
  return "(no error)";
}

const Json kResNet50 = Json::parse(R"({"crop_pct": 0.875, "do_normalize": true, "do_resize": true,
  "feature_extractor_type": "ConvNextFeatureExtractor", "image_mean": [0.485, 0.456, 0.406],
  "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224})");

}  // namespace

// Goldens: /usr/bin/python3 scripts/golden/image_processors.py (Pillow 9.4 resize + numpy crop/rescale/normalise).
TEST_CASE("Hub processors give the tensor of Pillow's resize, HF's crop, rescale and normalise", "[models][preprocessor]") {
  const Json golden = em::io::read_json_file((fs::path(EM_SOURCE_DIR) / "tests/golden/image_processors.json").string());
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    INFO(c["name"].get<std::string>());
    fs::path path;
    if (c.contains("shared")) {
      auto found = em::test::shared_path(c["shared"].get<std::string>());
      if (!found) continue;
      path = *found;
    } else {
      path = fs::path(EM_SOURCE_DIR) / c["repo"].get<std::string>();
    }
    em::io::Image image = em::io::read_image(path.string(), 3);
    if (c["transpose"].get<bool>()) image = transpose(image);
    REQUIRE(image.width == c["input_size"][0].get<int>());
    REQUIRE(image.height == c["input_size"][1].get<int>());

    const PreprocessorConfig p = PreprocessorConfig::from_json(c["config"], "golden");
    const auto g = p.geometry(image.height, image.width);
    CHECK(g.resize_height == c["geometry"]["resize"][0].get<int>());
    CHECK(g.resize_width == c["geometry"]["resize"][1].get<int>());
    torch::Tensor t = em::models::preprocess_image(p, image);
    REQUIRE(t.sizes().vec() == c["shape"].get<std::vector<int64_t>>());
    const int64_t h = t.size(1), w = t.size(2);
    auto a = t.accessor<float, 3>();
    double worst = 0;
    size_t k = 0;
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < 8; ++j, ++k) {
          double sum = 0;
          int64_t n = 0;
          for (int64_t y = i * h / 8; y < (i + 1) * h / 8; ++y)
            for (int64_t x = j * w / 8; x < (j + 1) * w / 8; ++x, ++n) sum += a[ch][y][x];
          worst = std::max(worst, std::abs(sum / static_cast<double>(n) - c["block_means"][k].get<double>()));
        }
    for (int64_t s = 0; s < 64; ++s)
      worst = std::max(worst, std::abs(a[s % 3][(s * 37) % h][(s * 101) % w] - c["samples"][s].get<double>()));
    CHECK(worst < 1e-6);
    ++checked;
  }
  CHECK(checked >= 2);  // the repository images at least
}

TEST_CASE("microsoft/resnet-50's processor: shortest edge 224 of int(224 / 0.875) = 256, bicubic, centre crop",
          "[models][preprocessor]") {
  const PreprocessorConfig p = PreprocessorConfig::from_json(kResNet50, "resnet-50");
  CHECK(p.processor_class() == "ConvNextImageProcessor");
  CHECK(p.shortest_edge == 224);
  CHECK(p.height == 224);  // the model input (what input_pixels counts)
  CHECK(p.resample == 3);
  // 451 x 300 (w x h): the short side 300 -> 256, the long int(256 * 451 / 300) = 384; crop offsets (384 - 224) // 2
  // and (256 - 224) // 2.
  auto g = p.geometry(300, 451);
  CHECK((std::array<int, 6>{g.resize_height, g.resize_width, g.crop_top, g.crop_left, g.height, g.width} ==
         std::array<int, 6>{256, 384, 16, 80, 224, 224}));
  // Portrait, and odd differences round down as Python's //.
  g = p.geometry(451, 301);
  CHECK((std::array<int, 4>{g.resize_height, g.resize_width, g.crop_top, g.crop_left} ==
         std::array<int, 4>{383, 256, 79, 16}));
  // From 384 on: a square resize, no crop.
  Json big = kResNet50;
  big["size"] = Json{{"shortest_edge", 384}};
  g = PreprocessorConfig::from_json(big, "p").geometry(300, 451);
  CHECK((std::array<int, 4>{g.resize_height, g.resize_width, g.height, g.width} == std::array<int, 4>{384, 384, 384, 384}));
  // do_resize false: neither resize nor crop.
  Json none = kResNet50;
  none["do_resize"] = false;
  g = PreprocessorConfig::from_json(none, "p").geometry(300, 451);
  CHECK((std::array<int, 2>{g.height, g.width} == std::array<int, 2>{300, 451}));
}

TEST_CASE("reading then writing a Hub processor keeps its fields", "[models][preprocessor]") {
  // The old feature-extractor file: no image_processor_type is added (HF would then build ViTImageProcessor), the
  // integer size becomes HF's own {"shortest_edge"} form, crop_pct and resample stay.
  Json written = PreprocessorConfig::from_json(kResNet50, "p").to_json();
  CHECK_FALSE(written.contains("image_processor_type"));
  CHECK(written["feature_extractor_type"] == "ConvNextFeatureExtractor");
  CHECK(written["size"] == Json{{"shortest_edge", 224}});
  CHECK(written["crop_pct"] == 0.875);
  CHECK(written["resample"] == 3);
  // The ConvNextImageProcessor form round-trips field for field.
  const Json hub = Json::parse(R"({"crop_pct": 0.875, "do_normalize": true, "do_rescale": true, "do_resize": true,
    "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "ConvNextImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "resample": 3, "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224}})");
  CHECK(unordered(PreprocessorConfig::from_json(hub, "p").to_json()) == unordered(hub));
  // ConvNext's defaults where the file is silent: shortest edge 384, bicubic, crop_pct 224/256, mean/std 0.5.
  const auto bare = PreprocessorConfig::from_json(Json{{"image_processor_type", "ConvNextImageProcessor"}}, "p");
  CHECK(bare.shortest_edge == 384);
  CHECK(bare.resample == 3);
  CHECK(bare.crop_pct == Approx(0.875));
  CHECK(bare.image_mean == std::vector<double>{0.5, 0.5, 0.5});
}

TEST_CASE("em-train's own processors still resize bilinearly to a square, pixel for pixel", "[models][preprocessor]") {
  em::io::Image image = em::io::read_image((fs::path(EM_SOURCE_DIR) / "tests/golden/image/rgb_60x40.png").string(), 3);
  for (const auto& p : {PreprocessorConfig::classification(28), PreprocessorConfig::segmentation(32)}) {
    const PreprocessorConfig back = PreprocessorConfig::from_json(p.to_json(), "p");
    CHECK(back.to_json() == p.to_json());
    const auto size = static_cast<int>(p.width);
    CHECK(torch::equal(em::models::preprocess_image(back, image),
                       em::tensor::to_normalized_tensor(em::data::resize_bilinear(image, size, size))));
  }
}

TEST_CASE("resample picks the PIL filter of the resize", "[models][preprocessor]") {
  em::io::Image image = em::io::read_image((fs::path(EM_SOURCE_DIR) / "tests/golden/image/rgb_37x23.png").string(), 3);
  for (int code = 0; code <= 5; ++code) {
    auto p = PreprocessorConfig::classification(16);
    p.resample = code;
    CHECK(torch::equal(em::models::preprocess_image(p, image),
                       em::tensor::to_normalized_tensor(em::data::resize(image, 16, 16, em::data::pil_filter(code)))));
  }
}

TEST_CASE("processor fields that would change the pixels in ways emkit does not implement are refused",
          "[models][preprocessor]") {
  // Square processors take {"height", "width"}; HF's ViTImageProcessor itself fails on shortest_edge.
  CHECK_THAT(error_of({{"image_processor_type", "ViTImageProcessor"}, {"size", {{"shortest_edge", 224}}}}),
             Contains("pre.json: field \"size\"") && Contains("ViTImageProcessor"));
  CHECK_THAT(error_of({{"size", {{"shortest_edge", 224}}}}), Contains("field \"size\""));
  CHECK_THAT(error_of({{"image_processor_type", "BitImageProcessor"}, {"size", {{"shortest_edge", 224}}}}),
             Contains("BitImageProcessor"));
  CHECK_THAT(error_of({{"image_processor_type", "ConvNextImageProcessor"}, {"size", {{"height", 9}, {"width", 9}}}}),
             Contains("ConvNextImageProcessor takes"));
  CHECK_THAT(error_of({{"image_processor_type", "ConvNextImageProcessor"}, {"crop_pct", 1.5}, {"size", 224}}),
             Contains("\"crop_pct\""));
  // From 384 on HF does not use crop_pct.
  CHECK(error_of({{"image_processor_type", "ConvNextImageProcessor"}, {"crop_pct", 1.5}, {"size", 384}}) == "(no error)");
  // Another class's crop, pad or flip: named, not ignored.
  CHECK_THAT(error_of({{"feature_extractor_type", "DeiTFeatureExtractor"}, {"do_center_crop", true}, {"crop_size", 224},
                       {"size", 256}}),
             Contains("field \"do_center_crop\" = true") && Contains("DeiTImageProcessor"));
  CHECK_THAT(error_of({{"do_pad", true}}), Contains("\"do_pad\""));
  CHECK_THAT(error_of({{"image_processor_type", "X"}, {"size_divisor", 32}}), Contains("\"size_divisor\""));
  CHECK_THAT(error_of({{"do_reduce_labels", "yes"}}), Contains("\"do_reduce_labels\""));
  // Values that leave the pixels alone are accepted, and HF's own classes ignore fields that are not theirs.
  CHECK(error_of({{"image_processor_type", "X"}, {"do_center_crop", false}, {"crop_pct", nullptr}}) == "(no error)");
  CHECK(error_of({{"image_processor_type", "ViTImageProcessor"}, {"do_center_crop", true}}) == "(no error)");
}

TEST_CASE("do_reduce_labels is read as HF reads it", "[models][preprocessor][segmentation]") {
  CHECK_FALSE(PreprocessorConfig::segmentation(64).reduce_labels());
  CHECK(PreprocessorConfig::from_json({{"do_reduce_labels", true}}, "p").reduce_labels());
  // nvidia/segformer-*-ade's older name; it wins over do_reduce_labels when both are given (HF's from_dict).
  CHECK(PreprocessorConfig::from_json({{"reduce_labels", true}, {"do_reduce_labels", false}}, "p").reduce_labels());
}

// ------------------------------------------------------------------------------------------------ DETR

TEST_CASE("DETR: size {max_height, max_width} scales by the smaller ratio, pad_size is refused, resample is used",
          "[models][preprocessor][detector]") {
  using em::models::DetrImageProcessorConfig;
  // HF's get_image_size_for_max_height_width docstring examples: (100, 200) in 50 x 50 -> (25, 50); in 200 x 500 ->
  // (200, 400).
  auto fit = DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"max_height": 50, "max_width": 50}})"), "p");
  CHECK(fit.output_size(100, 200) == std::pair<int, int>{25, 50});
  CHECK(fit.to_json()["size"] == Json{{"max_height", 50}, {"max_width", 50}});
  auto wide = DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"max_height": 200, "max_width": 500}})"), "p");
  CHECK(wide.output_size(100, 200) == std::pair<int, int>{200, 400});
  CHECK(DetrImageProcessorConfig::from_json(wide.to_json(), "p").output_size(100, 200) == std::pair<int, int>{200, 400});

  CHECK_THROWS_WITH(DetrImageProcessorConfig::from_json(Json::parse(R"({"pad_size": {"height": 800, "width": 800}})"),
                                                        "p.json"),
                    Contains("p.json: field \"pad_size\""));
  CHECK_NOTHROW(DetrImageProcessorConfig::from_json(Json::parse(R"({"pad_size": null, "do_pad": false})"), "p"));
  // HF refuses {"longest_edge"} alone too.
  CHECK_THROWS_WITH(DetrImageProcessorConfig::from_json(Json::parse(R"({"size": {"longest_edge": 1333}})"), "p.json"),
                    Contains("p.json: field \"size\""));
  // DetrImageProcessor ignores fields that are not its own (HF does too): no refusal from the common reader.
  CHECK_NOTHROW(DetrImageProcessorConfig::from_json(Json::parse(R"({"do_center_crop": true})"), "p"));

  auto d = em::models::Detector::create("detr-resnet-18-tiny", {"cat"}, 96, 0.5);
  em::io::Image image = em::io::read_image((fs::path(EM_SOURCE_DIR) / "tests/golden/image/rgb_60x40.png").string(), 3);
  d.preprocessor.common.resample = 3;  // 40 x 60 -> 96 x 144, bicubic
  CHECK(torch::equal(d.preprocess(image), em::tensor::to_normalized_tensor(
                                              em::data::resize(image, 144, 96, em::data::Filter::bicubic))));
  d.preprocessor.common.resample = 2;
  CHECK_FALSE(torch::equal(d.preprocess(image), em::tensor::to_normalized_tensor(
                                                    em::data::resize(image, 144, 96, em::data::Filter::bicubic))));
}

// ------------------------------------------------------------------------------------------------ do_reduce_labels

TEST_CASE("a reduced label map follows HF's rule: 0 -> 255, id - 1, 255 stays 255", "[models][preprocessor][segmentation]") {
  em::test::SegmentationFolder f;
  f.labels({"a", "b"});
  auto map = [](int) {
    return em::test::make_image(5, 1, 1, [](int, int x, int) { return static_cast<uint8_t>(x < 3 ? x : 255); });
  };
  f.add_split("train", 1, map);
  f.add_split("validation", 1, map);
  // Map 0 1 2 255 255 with 2 labels: reduced 255 0 1 255 255 (value 2 is allowed only because it reduces to id 1).
  const auto entries = em::data::SegmentationDataset::scan(f.dir.string(), false).validation;
  auto sample = em::data::read_segmentation_sample(entries[0], 2, /*reduce_labels=*/true);
  CHECK(sample.label_map.pixels == std::vector<uint8_t>{255, 0, 1, 255, 255});
  CHECK_THROWS_WITH(em::data::read_segmentation_sample(entries[0], 2), Contains("2"));
  CHECK_THROWS_WITH(em::data::read_segmentation_sample(entries[0], 1, true), Contains("do_reduce_labels"));
}

TEST_CASE("em-eval reduces the dataset's label maps when the model's processor says do_reduce_labels",
          "[models][preprocessor][segmentation]") {
  em::test::SegmentationFolder f;
  f.labels({"left", "middle", "right"});
  auto stripes = [](int i) {
    return em::test::make_image(30 + 2 * i, 20, 1, [i](int y, int x, int) {
      return static_cast<uint8_t>(y < 2 && x < 3 ? 255 : (x + i) * 3 / (30 + 3 * i) % 3);
    });
  };
  f.add_split("train", 2, stripes);
  f.add_split("validation", 3, stripes);
  em::io::write_file_atomic(f.tmp / "tiny.json", R"({"model_type": "segformer", "num_encoder_blocks": 2,
    "depths": [1, 1], "sr_ratios": [2, 1], "hidden_sizes": [8, 16], "patch_sizes": [7, 3], "strides": [4, 2],
    "num_attention_heads": [1, 2], "mlp_ratios": [2, 2], "decoder_hidden_size": 8})");
  em::train::TrainOptions o;
  o.data_dir = f.dir.string();
  o.output_dir = (f.tmp / "run").string();
  o.model_config = (f.tmp / "tiny.json").string();
  o.hp = em::train::Hyperparameters::defaults(em::Algo::segmentation);
  o.hp.image_size = 32;
  o.hp.num_workers = 0;
  em::train::SegmentationTask(o).save_model(f.tmp / "model");
  em::train::EvalOptions eval;
  eval.show_progress = false;
  eval.predictions_path = (f.tmp / "pred").string();
  const auto as_is = em::train::SegmentationTask((f.tmp / "model").string(), f.dir.string(), 2, 0).evaluate(eval);

  const fs::path pre = f.tmp / "model" / "preprocessor_config.json";
  Json j = em::io::read_json_file(pre.string());
  j["do_reduce_labels"] = true;
  em::io::write_json_file(pre, j);
  eval.predictions_path = (f.tmp / "pred_reduced").string();
  const auto reduced = em::train::SegmentationTask((f.tmp / "model").string(), f.dir.string(), 2, 0).evaluate(eval);

  // The same predictions, scored against reduced truth by the metrics' own reduce_labels (evaluate's mean_iou rule,
  // tests/unit/metrics/test_segmentation.cpp): what em-eval reports with the flag, and not what it reports without.
  em::metrics::SegmentationScoreOptions by_hf;
  by_hf.reduce_labels = true;
  const auto expected = em::metrics::score_segmentation_folders(f.dir / "validation", f.tmp / "pred", by_hf);
  CHECK(reduced.metrics == expected.metrics.to_json(expected.labels));
  CHECK(as_is.metrics != reduced.metrics);
  CHECK(reduced.scalars.at("mean_iou") != as_is.scalars.at("mean_iou"));
  // The truth's "right" (2) reduces to 1 and "left" (0) is ignored: no truth pixel is id 2 any more.
  CHECK(reduced.metrics["per_category_accuracy"]["right"].is_null());
}
