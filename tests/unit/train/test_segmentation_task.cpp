// SegmentationTask: seeded training batches (image + ignore-padded labels), skipped bad samples, no weight decay on
// norms and biases, and a streaming evaluation whose numbers do not depend on batching and equal em-metrics' scoring
// of the label PNGs it writes.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/metrics/segmentation_io.hpp"
#include "em/train/segmentation_task.hpp"
#include "../data/segmentation_test_data.hpp"

#include <algorithm>
#include <cmath>

namespace fs = std::filesystem;
using em::io::Json;
using em::test::make_image;
using Catch::Contains;

namespace {

const char* kTinyConfig = R"({"model_type": "segformer", "num_encoder_blocks": 2, "depths": [1, 1],
  "sr_ratios": [2, 1], "hidden_sizes": [8, 16], "patch_sizes": [7, 3], "strides": [4, 2],
  "num_attention_heads": [1, 2], "mlp_ratios": [2, 2], "decoder_hidden_size": 8})";

// Three classes in vertical stripes whose position moves with the entry; images show the classes as grey levels.
struct StripesDataset {
  em::test::SegmentationFolder f;
  StripesDataset() {
    f.labels({"left", "middle", "right"});
    auto stripes = [](int i) {
      return make_image(30 + 2 * i, 20, 1, [i](int y, int x, int) {
        return static_cast<uint8_t>(y < 2 && x < 3 ? 255 : (x + i) * 3 / (30 + 3 * i) % 3);
      });
    };
    f.add_split("train", 5, stripes);
    f.add_split("validation", 4, stripes);
    em::io::write_file_atomic(f.tmp / "tiny.json", kTinyConfig);
  }
  em::train::TrainOptions options() const {
    em::train::TrainOptions o;
    o.data_dir = f.dir.string();
    o.output_dir = (f.tmp / "run").string();
    o.model_config = (f.tmp / "tiny.json").string();
    o.hp = em::train::Hyperparameters::defaults(em::Algo::segmentation);
    o.hp.image_size = 32;
    o.hp.num_workers = 0;
    return o;
  }
};

em::train::EvalOptions eval_options(const std::string& predictions = "") {
  em::train::EvalOptions o;
  o.show_progress = false;
  o.predictions_path = predictions;
  return o;
}

}  // namespace

TEST_CASE("segmentation training batches are seeded crops with ignore-padded int64 labels", "[train][segmentation]") {
  StripesDataset d;
  em::train::SegmentationTask task(d.options());
  CHECK(task.train_size() == 5);
  CHECK(task.main_metric() == "mean_iou");
  em::tensor::Batch a = task.train_batch({0, 3, 4}, 0);
  CHECK(a.pixel_values.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(a.labels.sizes() == torch::IntArrayRef({3, 32, 32}));
  CHECK(a.labels.scalar_type() == torch::kInt64);
  CHECK(a.indices == std::vector<int64_t>{0, 3, 4});
  auto values = std::get<0>(torch::_unique(a.labels));
  for (int64_t i = 0; i < values.numel(); ++i) {
    const int64_t v = values[i].item<int64_t>();
    CHECK((v == 255 || (v >= 0 && v < 3)));
  }
  em::tensor::Batch again = task.train_batch({0, 3, 4}, 0);
  CHECK(torch::equal(a.pixel_values, again.pixel_values));
  CHECK(torch::equal(a.labels, again.labels));
  em::tensor::Batch other_epoch = task.train_batch({0, 3, 4}, 1);
  CHECK_FALSE(torch::equal(a.labels, other_epoch.labels));

  auto loss = task.loss(a);
  CHECK(loss.loss.dim() == 0);
  CHECK(std::isfinite(loss.loss.item<double>()));
}

TEST_CASE("an unreadable training sample is skipped and counted", "[train][segmentation]") {
  StripesDataset d;
  d.f.image("train", "annotations/2.png", make_image(32, 20, 1, [](int, int, int) { return 9; }));
  em::train::SegmentationTask task(d.options());
  em::tensor::Batch b = task.train_batch({1, 2}, 0);
  CHECK(b.skipped == 1);
  CHECK(b.indices == std::vector<int64_t>{1});
  CHECK(b.pixel_values.size(0) == 1);
}

TEST_CASE("segmentation parameter groups leave norms and biases undecayed", "[train][segmentation]") {
  StripesDataset d;
  em::train::SegmentationTask task(d.options());
  auto groups = task.param_groups(0.01);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].weight_decay == 0.01);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[0].names.size() + groups[1].names.size() == task.model().parameters().size());
  for (const auto& name : groups[0].names) {
    INFO(name);
    CHECK(name.find("norm") == std::string::npos);
    CHECK(name.find("bias") == std::string::npos);
  }
  auto has = [&](const std::vector<std::string>& names, const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  CHECK(has(groups[1].names, "segformer.encoder.layer_norm.0.weight"));
  CHECK(has(groups[1].names, "segformer.encoder.block.0.0.attention.self.layer_norm.weight"));
  CHECK(has(groups[1].names, "decode_head.batch_norm.weight"));
  CHECK(has(groups[1].names, "decode_head.classifier.bias"));
  CHECK(has(groups[0].names, "decode_head.classifier.weight"));
  CHECK(has(groups[0].names, "segformer.encoder.block.0.0.mlp.dwconv.dwconv.weight"));
}

TEST_CASE("segmentation evaluation is independent of batching and equals the scoring of its label PNGs",
          "[train][segmentation]") {
  StripesDataset d;
  auto opts = d.options();
  em::train::SegmentationTask task(opts);
  task.save_model(d.f.tmp / "model");

  em::train::SegmentationTask by_one((d.f.tmp / "model").string(), d.f.dir.string(), 1, 0);
  em::train::SegmentationTask by_three((d.f.tmp / "model").string(), d.f.dir.string(), 3, 2);
  auto one = by_one.evaluate(eval_options((d.f.tmp / "pred").string()));
  auto three = by_three.evaluate(eval_options());
  auto trained = task.evaluate(eval_options());
  CHECK(one.metrics == three.metrics);
  CHECK(one.metrics == trained.metrics);
  for (const char* key : {"mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou", "per_category_accuracy"})
    CHECK(one.metrics.contains(key));
  CHECK(one.scalars.count("mean_iou"));
  CHECK(one.scalars.count("mean_accuracy"));
  CHECK(one.scalars.count("overall_accuracy"));
  for (const auto& [name, value] : one.scalars) CHECK(std::isfinite(value));

  // One PNG per validation image, at the seg_map path and the truth's size.
  for (int i = 0; i < 4; ++i) {
    auto map = em::io::read_image((d.f.tmp / "pred/annotations" / (std::to_string(i) + ".png")).string(), 1);
    CHECK(map.width == 30 + 2 * i);
    CHECK(map.height == 20);
  }
  auto score = em::metrics::score_segmentation_folders(d.f.dir / "validation", d.f.tmp / "pred");
  CHECK(score.metrics.to_json(score.labels) == one.metrics);

  CHECK_THROWS_AS(by_one.evaluate(eval_options((d.f.dir / "validation").string())), em::UsageError);
}

TEST_CASE("evaluating a model on a dataset whose ids name other classes is refused", "[train][segmentation]") {
  StripesDataset d;
  em::train::SegmentationTask task(d.options());
  task.save_model(d.f.tmp / "model");
  d.f.labels({"left", "right", "middle"});
  CHECK_THROWS_WITH(em::train::SegmentationTask((d.f.tmp / "model").string(), d.f.dir.string(), 2, 0),
                    Contains("does not match the model") && Contains("left, right, middle"));
}

TEST_CASE("training with --init from a folder and no --model_config takes the folder's architecture", "[train][segmentation]") {
  StripesDataset d;
  em::train::SegmentationTask source(d.options());
  source.save_model(d.f.tmp / "model");
  auto opts = d.options();
  opts.model_config.clear();
  opts.init = (d.f.tmp / "model").string();
  em::train::SegmentationTask task(opts);  // the default mit-b3 would match no tensor and fail
  auto a = source.model().named_parameters();
  auto b = task.model().named_parameters();
  CHECK(torch::equal(a["segformer.encoder.patch_embeddings.0.proj.weight"],
                     b["segformer.encoder.patch_embeddings.0.proj.weight"]));
  CHECK(torch::equal(a["decode_head.classifier.weight"], b["decode_head.classifier.weight"]));
}

TEST_CASE("segmentation eval_loss is the model's loss at each seg map's size, pooled over a batch's pixels and weighted "
          "by batch size as HF's evaluation_loop",
          "[train][segmentation]") {
  StripesDataset d;
  em::train::SegmentationTask task(d.options());
  task.save_model(d.f.tmp / "model");
  // Each validation image's loss and counted pixels (not 255), from the model folder's own pieces.
  const em::models::Segmenter segmenter = em::models::Segmenter::load(d.f.tmp / "model");
  const auto dataset = em::data::SegmentationDataset::scan(d.f.dir.string());
  std::vector<double> loss, pixels;
  {
    torch::NoGradGuard no_grad;
    for (const auto& entry : dataset.validation) {
      const auto sample = em::data::read_segmentation_sample(entry, 3);
      torch::Tensor truth = torch::empty({sample.label_map.height, sample.label_map.width}, torch::kInt64);
      for (size_t i = 0; i < sample.label_map.pixels.size(); ++i) truth.data_ptr<int64_t>()[i] = sample.label_map.pixels[i];
      const torch::Tensor logits = segmenter.logits(segmenter.preprocess(sample.image).unsqueeze(0), false);
      loss.push_back(em::models::segmentation_loss(logits, truth.unsqueeze(0), 255).item<double>());
      pixels.push_back(static_cast<double>((truth != 255).sum().item<int64_t>()));
    }
  }
  REQUIRE(loss.size() == 4);
  CHECK(pixels[0] != pixels[3]);
  em::train::EvalOptions with_loss = eval_options();
  with_loss.compute_loss = true;
  em::train::SegmentationTask by_one((d.f.tmp / "model").string(), d.f.dir.string(), 1, 0);
  const auto one = by_one.evaluate(with_loss);
  CHECK(one.scalars.at("loss") == Approx((loss[0] + loss[1] + loss[2] + loss[3]) / 4).epsilon(1e-5));
  CHECK(one.metrics.at("loss").get<double>() == one.scalars.at("loss"));
  // Batches [0, 1, 2] and [3]: the first batch's loss pools its pixels and counts three times.
  em::train::SegmentationTask by_three((d.f.tmp / "model").string(), d.f.dir.string(), 3, 1);
  const double pooled = (loss[0] * pixels[0] + loss[1] * pixels[1] + loss[2] * pixels[2]) /
                        (pixels[0] + pixels[1] + pixels[2]);
  CHECK(by_three.evaluate(with_loss).scalars.at("loss") == Approx((3 * pooled + loss[3]) / 4).epsilon(1e-5));
  // Without compute_loss (em-eval) there is none; every key evaluate() logs is one metric_names() declares.
  const auto plain = by_one.evaluate(eval_options());
  CHECK(plain.scalars.count("loss") == 0);
  CHECK_FALSE(plain.metrics.contains("loss"));
  const auto names = by_one.metric_names();
  for (const auto& [name, value] : one.scalars) {
    INFO(name);
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
  }
}
