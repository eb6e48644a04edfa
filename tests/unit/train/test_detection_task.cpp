// DetectionTask: training targets (crowd boxes dropped, degenerate dropped, out-of-image clipped, normalised to the
// padded frame), padded batches with a pixel mask, seeded augmentation, the loss terms, the 0.1x backbone group.
#include <catch2/catch.hpp>

#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/train/detection_task.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace fs = std::filesystem;
using em::io::Json;

namespace {

void write_png(const fs::path& path, int width, int height, uint8_t value) {
  em::io::Image img;
  img.width = width;
  img.height = height;
  img.channels = 3;
  img.pixels.assign(img.size(), value);
  em::io::write_png(path.string(), img);
}

// a.png 64x48: a box, a crowd region, a zero-width box, a box past the right edge; b.png 40x80: one box.
struct TinyDetectionData {
  em::test::TempDir dir;
  fs::path config;
  TinyDetectionData() {
    Json doc = Json::parse(R"({
      "images": [{"id": 5, "file_name": "a.png", "width": 64, "height": 48},
                 {"id": 9, "file_name": "b.png", "width": 40, "height": 80}],
      "categories": [{"id": 0, "name": "things", "supercategory": "none"}, {"id": 2, "name": "cat"},
                     {"id": 4, "name": "dog"}],
      "annotations": [
        {"id": 1, "image_id": 5, "category_id": 4, "bbox": [8, 6, 16, 12], "area": 192, "iscrowd": 0},
        {"id": 2, "image_id": 5, "category_id": 2, "bbox": [0, 0, 64, 48], "area": 3072, "iscrowd": 1},
        {"id": 3, "image_id": 5, "category_id": 2, "bbox": [30, 10, 0, 5], "area": 0, "iscrowd": 0},
        {"id": 4, "image_id": 5, "category_id": 2, "bbox": [50, 20, 20, 10], "area": 200, "iscrowd": 0},
        {"id": 5, "image_id": 9, "category_id": 2, "bbox": [4, 8, 20, 40], "area": 800, "iscrowd": 0}]})");
    for (const char* split : {"train", "validation"}) {
      fs::create_directories(dir / split);
      write_png(dir / split / "a.png", 64, 48, 100);
      write_png(dir / split / "b.png", 40, 80, 150);
      em::io::write_file_atomic(dir / split / "_annotations.coco.json", em::io::dump_json(doc));
    }
    config = dir / "tiny_detr.json";
    em::io::write_file_atomic(config, R"({"model_type": "detr", "backbone": "resnet18", "d_model": 32,
      "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
      "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "num_queries": 6, "auxiliary_loss": true})");
  }
  em::train::TrainOptions options(const std::string& augmentation, int64_t image_size) const {
    em::train::TrainOptions o;
    o.data_dir = dir.path().string();
    o.hp = em::train::Hyperparameters::defaults(em::Algo::detection);
    o.hp.augmentation = augmentation;
    o.hp.image_size = image_size;
    o.hp.threshold = 0.3;
    o.model_config = config.string();
    return o;
  }
};

}  // namespace

TEST_CASE("detection targets: crowd and degenerate boxes dropped, boxes past the image clipped, padded-frame cxcywh",
          "[train][detection]") {
  TinyDetectionData data;
  em::train::DetectionTask task(data.options("none", 48));
  REQUIRE(task.train_size() == 2);
  em::tensor::Batch batch = task.train_batch({0, 1}, 0);
  // a.png 64x48 stays 64x48 (shortest edge 48); b.png 40x80 -> 48x96, capped by longest round(1333*48/800) = 80:
  // 40x80 already has longest 80 -> 40x80. The batch pads to 80 rows x 64 columns.
  REQUIRE(batch.pixel_values.sizes() == torch::IntArrayRef({2, 3, 80, 64}));
  REQUIRE(batch.pixel_mask.sizes() == torch::IntArrayRef({2, 80, 64}));
  CHECK(batch.pixel_mask[0].sum().item<int64_t>() == 64 * 48);
  CHECK(batch.pixel_mask[1].sum().item<int64_t>() == 40 * 80);
  CHECK(batch.pixel_mask[0][47][63].item<int64_t>() == 1);
  CHECK(batch.pixel_mask[0][48][0].item<int64_t>() == 0);
  CHECK(batch.pixel_values[0].slice(1, 48).abs().sum().item<float>() == 0);  // zero padding

  REQUIRE(batch.boxes.size() == 2);
  // Labels are category positions in id order: things 0, cat 1, dog 2.
  CHECK(torch::equal(batch.boxes[0].labels, torch::tensor({2, 1}, torch::kInt64)));
  // [8, 6, 16, 12] -> xyxy 8..24 x 6..18; [50, 20, 20, 10] clipped to 50..64 x 20..30; frame 64 x 80.
  torch::Tensor want = torch::tensor({16.0f / 64, 12.0f / 80, 16.0f / 64, 12.0f / 80,  //
                                      57.0f / 64, 25.0f / 80, 14.0f / 64, 10.0f / 80})
                           .reshape({2, 4});
  CHECK(torch::allclose(batch.boxes[0].boxes, want, 0, 1e-6));
  CHECK(torch::allclose(batch.boxes[1].boxes,
                        torch::tensor({14.0f / 64, 28.0f / 80, 20.0f / 64, 40.0f / 80}).reshape({1, 4}), 0, 1e-6));

  em::train::LossOutput loss = task.loss(batch);
  CHECK(std::isfinite(loss.loss.item<double>()));
  for (const char* term : {"loss_ce", "loss_bbox", "loss_giou", "cardinality_error"}) {
    INFO(term);
    CHECK(loss.terms.count(term) == 1);
  }
}

TEST_CASE("detection batches are a function of (seed, epoch, index)", "[train][detection]") {
  TinyDetectionData data;
  em::train::DetectionTask task(data.options("detr", 64));
  em::tensor::Batch a = task.train_batch({1, 0}, 3), b = task.train_batch({1, 0}, 3);
  CHECK(torch::equal(a.pixel_values, b.pixel_values));
  CHECK(torch::equal(a.boxes[1].boxes, b.boxes[1].boxes));
  bool differs = false;
  for (int64_t epoch = 4; epoch < 10 && !differs; ++epoch) {
    em::tensor::Batch c = task.train_batch({1, 0}, epoch);
    differs = !c.pixel_values.sizes().equals(a.pixel_values.sizes()) || !torch::equal(c.pixel_values, a.pixel_values);
  }
  CHECK(differs);
}

TEST_CASE("the backbone trains at 0.1x the learning rate; conv1 and layer1 not at all", "[train][detection]") {
  TinyDetectionData data;
  em::train::DetectionTask task(data.options("none", 48));
  auto groups = task.param_groups(1e-4);
  REQUIRE(groups.size() == 2);
  const auto& rest = groups[0];
  const auto& backbone = groups[1];
  CHECK(rest.lr_scale == 1.0);
  CHECK(backbone.lr_scale == Approx(0.1));
  CHECK(rest.weight_decay.value() == 1e-4);
  CHECK(backbone.weight_decay.value() == 1e-4);
  std::set<std::string> backbone_names(backbone.names.begin(), backbone.names.end());
  for (const auto& n : backbone.names) {
    INFO(n);
    CHECK(n.rfind("model.backbone.conv_encoder.model.layer", 0) == 0);
    CHECK(n.find(".layer1.") == std::string::npos);
  }
  CHECK_FALSE(backbone.names.empty());
  size_t trainable = 0;
  for (const auto& p : task.model().named_parameters()) {
    if (!p.value().requires_grad()) {
      INFO(p.key());
      CHECK((p.key().find("conv1") != std::string::npos || p.key().find("layer1") != std::string::npos));
      continue;
    }
    ++trainable;
    const bool in_backbone = backbone_names.count(p.key()) > 0;
    CHECK(in_backbone == (p.key().rfind("model.backbone.", 0) == 0));
  }
  CHECK(rest.names.size() + backbone.names.size() == trainable);
}

TEST_CASE("detection eval_loss is DETR's loss (auxiliary layers included) of the forward pass that evaluation scores, "
          "the split's boxes resized with their images",
          "[train][detection]") {
  TinyDetectionData data;  // train and validation hold the same two images and boxes
  em::train::DetectionTask task(data.options("none", 64));  // a.png 64x48 -> 85x64: boxes scale too
  em::train::EvalOptions eo;
  eo.show_progress = false;
  eo.compute_loss = true;
  const em::train::EvalResult with_loss = task.evaluate(eo);  // one batch of both (per_device_eval_batch_size 4)
  // The same images and targets as a training batch without augmentation, scored in eval mode.
  task.model().eval();
  torch::NoGradGuard no_grad;
  const double expected = task.loss(task.train_batch({0, 1}, 0)).loss.item<double>();
  REQUIRE(std::isfinite(expected));
  CHECK(with_loss.scalars.at("loss") == Approx(expected).epsilon(1e-4));
  CHECK(with_loss.metrics.at("loss").get<double>() == with_loss.scalars.at("loss"));
  // One forward pass for both: the COCO numbers are those of the evaluation without the loss (em-eval's).
  eo.compute_loss = false;
  const em::train::EvalResult plain = task.evaluate(eo);
  Json metrics = with_loss.metrics;
  metrics.erase("loss");
  CHECK(metrics == plain.metrics);
  CHECK(plain.scalars.count("loss") == 0);
  const auto names = task.metric_names();
  for (const auto& [name, value] : with_loss.scalars) {
    INFO(name);
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
  }
}
