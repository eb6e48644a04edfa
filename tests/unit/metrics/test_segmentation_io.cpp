// Scoring folders of predicted label PNGs against a segmentation split (the em-metrics --algo segmentation path).
#include <catch2/catch.hpp>

#include <cmath>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/metrics/segmentation_io.hpp"
#include "test_support.hpp"

using em::io::Json;
using namespace em::metrics;
namespace fs = std::filesystem;

namespace {

void write_map(const fs::path& path, int height, int width, const std::vector<uint8_t>& values, int channels = 1) {
  em::io::Image img;
  img.width = width;
  img.height = height;
  img.channels = channels;
  for (uint8_t v : values)
    for (int c = 0; c < channels; ++c) img.pixels.push_back(v);
  fs::create_directories(path.parent_path());
  em::io::write_png(path.string(), img);
}

// HF evaluate's mean_iou docstring example as a dataset: DIR/validation + PRED with the same seg_map paths.
struct DocstringDataset {
  em::test::TempDir tmp;
  DocstringDataset(const char* id2label_name = "id2label.json") {
    Json id2label = Json::object();
    for (int i = 0; i < 10; ++i) id2label[std::to_string(i)] = "class" + std::to_string(i);
    em::io::write_json_file(tmp / ("data/resources/" + std::string(id2label_name)), id2label);
    Json entries = Json::array();
    for (int i = 1; i <= 3; ++i)
      entries.push_back({{"image", "images/" + std::to_string(i) + ".png"},
                         {"seg_map", "annotations/" + std::to_string(i) + ".png"}});
    em::io::write_json_file(tmp / "data/validation/validation.json", entries);
    write_map(tmp / "data/validation/annotations/1.png", 3, 2, {0, 3, 5, 4, 6, 255});
    write_map(tmp / "data/validation/annotations/2.png", 3, 2, {1, 7, 9, 2, 3, 6});
    write_map(tmp / "data/validation/annotations/3.png", 3, 3, {1, 2, 2, 8, 2, 1, 3, 255, 1});
    write_map(tmp / "pred/annotations/1.png", 3, 2, {1, 2, 3, 4, 5, 255});
    write_map(tmp / "pred/annotations/2.png", 3, 2, {2, 7, 9, 2, 3, 6});
    write_map(tmp / "pred/annotations/3.png", 3, 3, {2, 2, 3, 8, 2, 4, 3, 255, 2});
  }
  fs::path truth() const { return tmp / "data/validation"; }
  fs::path pred() const { return tmp / "pred"; }
};

}  // namespace

TEST_CASE("label PNG folders give HF evaluate's docstring mean IoU", "[metrics]") {
  DocstringDataset d;
  auto score = score_segmentation_folders(d.truth(), d.pred());
  CHECK(score.labels.size() == 10);
  CHECK(score.num_scored == 3);
  CHECK(score.metrics.mean_iou == 0.47750000000000004);
  CHECK(score.metrics.mean_accuracy == 0.5916666666666666);
  CHECK(score.metrics.overall_accuracy == 0.5263157894736842);
  CHECK(score.metrics.to_json(score.labels)["per_category_iou"]["class2"].get<double>() == 0.375);
}

TEST_CASE("segmentation scoring names missing, mis-sized and colour prediction maps", "[metrics]") {
  DocstringDataset d;
  fs::remove(d.pred() / "annotations/2.png");
  CHECK_THROWS_WITH(score_segmentation_folders(d.truth(), d.pred()),
                    Catch::Contains("1 of 3 predicted label maps are missing") && Catch::Contains("2.png"));
  SegmentationScoreOptions allow;
  allow.allow_missing = true;
  CHECK(score_segmentation_folders(d.truth(), d.pred(), allow).num_scored == 2);

  write_map(d.pred() / "annotations/2.png", 2, 3, {2, 7, 9, 2, 3, 6});
  CHECK_THROWS_WITH(score_segmentation_folders(d.truth(), d.pred()), Catch::Contains("prediction is 3x2"));
  write_map(d.pred() / "annotations/2.png", 3, 2, {2, 7, 9, 2, 3, 6}, 3);
  CHECK_THROWS_WITH(score_segmentation_folders(d.truth(), d.pred()), Catch::Contains("3 channels"));
}

TEST_CASE("the seed's misspelt id2lable.json is accepted", "[metrics]") {
  DocstringDataset d("id2lable.json");
  CHECK(score_segmentation_folders(d.truth(), d.pred()).metrics.mean_iou == 0.47750000000000004);
}

TEST_CASE("real CamVid maps scored against shifted truths equal evaluate's algorithm", "[metrics]") {
  auto camvid = em::test::shared_path("data/camvid-mini");
  if (!camvid) return;
  // Prediction for entry i = the truth map of entry i + 1 (golden: scripts/golden/segmentation_mean_iou.py).
  em::test::TempDir tmp;
  Json entries = em::io::read_json_file((*camvid / "validation/validation.json").string());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string rel = entries[i]["seg_map"], next = entries[(i + 1) % entries.size()]["seg_map"];
    fs::create_directories((tmp / rel).parent_path());
    fs::copy_file(*camvid / "validation" / next, tmp / rel);
  }
  auto score = score_segmentation_folders(*camvid / "validation", tmp.path());
  Json golden = em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/segmentation_camvid_shifted.json");
  Json ours = score.metrics.to_json(score.labels);
  for (const char* key : {"mean_iou", "mean_accuracy", "overall_accuracy"})
    CHECK(std::abs(ours[key].get<double>() - golden[key].get<double>()) <= 1e-12);
  for (const char* key : {"per_category_iou", "per_category_accuracy"})
    for (auto it = golden[key].begin(); it != golden[key].end(); ++it) {
      INFO(key << " " << it.key());
      CHECK(std::abs(ours[key][it.key()].get<double>() - it.value().get<double>()) <= 1e-12);
    }
}
