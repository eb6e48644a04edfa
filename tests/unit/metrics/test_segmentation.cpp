// SegmentationAccumulator against HF evaluate's mean_iou: its docstring example, and cases computed by the NumPy
// re-run of evaluate's algorithm in scripts/golden/segmentation_mean_iou.py (tests/golden/segmentation_mean_iou.json).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/metrics/segmentation.hpp"

using em::io::Json;
using em::metrics::SegmentationAccumulator;
using em::metrics::SegmentationMetrics;

namespace {

// NaN in ours must be null in the golden; otherwise equal to 1e-12.
bool same(double ours, const Json& golden) {
  if (golden.is_null()) return std::isnan(ours);
  return std::abs(ours - golden.get<double>()) <= 1e-12;
}

SegmentationMetrics compute_case(const Json& c) {
  SegmentationAccumulator acc(c["num_labels"].get<int>(), c["ignore_index"].get<int>(), c["reduce_labels"].get<bool>());
  const bool u8 = c["dtype"] == "uint8";
  for (const auto& image : c["images"]) {
    auto pred = image["pred"].get<std::vector<int64_t>>();
    auto truth = image["truth"].get<std::vector<int64_t>>();
    REQUIRE(pred.size() == truth.size());
    if (u8) {  // feed the PNG pixel type through the uint8 path
      std::vector<uint8_t> p8(pred.begin(), pred.end()), t8(truth.begin(), truth.end());
      acc.add(p8.data(), t8.data(), p8.size());
    } else {
      acc.add(pred.data(), truth.data(), pred.size());
    }
  }
  return acc.compute();
}

Json golden_cases() {
  return em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/segmentation_mean_iou.json")["cases"];
}

}  // namespace

TEST_CASE("mean IoU reproduces HF evaluate's docstring example", "[metrics]") {
  // metrics/mean_iou/mean_iou.py in huggingface/evaluate: three maps, num_labels=10, ignore_index=255.
  const int64_t p1[] = {1, 2, 3, 4, 5, 255}, t1[] = {0, 3, 5, 4, 6, 255};
  const int64_t p2[] = {2, 7, 9, 2, 3, 6}, t2[] = {1, 7, 9, 2, 3, 6};
  const int64_t p3[] = {2, 2, 3, 8, 2, 4, 3, 255, 2}, t3[] = {1, 2, 2, 8, 2, 1, 3, 255, 1};
  SegmentationAccumulator acc(10, 255, false);
  acc.add(p1, t1, 6);
  acc.add(p2, t2, 6);
  acc.add(p3, t3, 9);
  auto m = acc.compute();
  // The docstring prints these reprs; NumPy-order summation makes ours bit-identical.
  CHECK(m.mean_iou == 0.47750000000000004);
  CHECK(m.mean_accuracy == 0.5916666666666666);
  CHECK(m.overall_accuracy == 0.5263157894736842);
  const std::vector<double> iou = {0., 0., 0.375, 0.4, 0.5, 0., 0.5, 1., 1., 1.};
  const std::vector<double> accuracy = {0., 0., 0.75, 2. / 3., 1., 0., 0.5, 1., 1., 1.};
  for (std::size_t c = 0; c < 10; ++c) {
    CHECK(m.per_category_iou[c] == Approx(iou[c]).margin(1e-12));
    CHECK(m.per_category_accuracy[c] == Approx(accuracy[c]).margin(1e-12));
  }
}

TEST_CASE("mean IoU equals evaluate's algorithm with ignore pixels, absent classes and reduce_labels", "[metrics]") {
  for (const auto& c : golden_cases()) {
    INFO("case " << c["name"].get<std::string>());
    auto m = compute_case(c);
    CHECK(same(m.mean_iou, c["mean_iou"]));
    CHECK(same(m.mean_accuracy, c["mean_accuracy"]));
    CHECK(same(m.overall_accuracy, c["overall_accuracy"]));
    REQUIRE(m.per_category_iou.size() == c["per_category_iou"].size());
    for (std::size_t k = 0; k < m.per_category_iou.size(); ++k) {
      INFO("class " << k);
      CHECK(same(m.per_category_iou[k], c["per_category_iou"][k]));
      CHECK(same(m.per_category_accuracy[k], c["per_category_accuracy"][k]));
    }
  }
}

TEST_CASE("segmentation metrics JSON names classes and writes undefined values as null", "[metrics]") {
  SegmentationAccumulator acc(3);
  const uint8_t pred[] = {0, 0, 1, 255}, truth[] = {0, 1, 1, 255};
  acc.add(pred, truth, 4);
  Json j = acc.compute().to_json({"sky", "road", "car"});
  CHECK(j["per_category_iou"]["sky"].get<double>() == Approx(0.5));
  CHECK(j["per_category_iou"]["car"].is_null());  // absent from both: NaN -> null, out of the mean
  CHECK(j["per_category_accuracy"]["car"].is_null());
  CHECK(j["mean_iou"].get<double>() == Approx(0.5));  // (0.5 + 0.5) / 2
  CHECK(em::io::dump_json(j).find("NaN") == std::string::npos);
  CHECK(acc.compute().to_json()["per_category_iou"].contains("2"));  // no names: the ids
  CHECK_THROWS_AS(acc.compute().to_json({"a", "b"}), em::Error);
  CHECK_THROWS_AS(acc.compute().to_json({"a", "a", "b"}), em::Error);
}

TEST_CASE("segmentation areas stream: per-image adds and merges equal one add over all pixels", "[metrics]") {
  const int32_t pred[] = {0, 1, 2, 2, 1, 0, 3, 255, 1, 2};
  const int32_t truth[] = {0, 1, 1, 2, 255, 0, 3, 2, 2, 2};
  SegmentationAccumulator whole(4), parts(4), other(4);
  whole.add(pred, truth, 10);
  parts.add(pred, truth, 4);
  other.add(pred + 4, truth + 4, 6);
  parts.merge(other);
  CHECK(parts.compute().to_json() == whole.compute().to_json());
  CHECK(parts.num_pixels() == 10);
  CHECK_THROWS_AS(parts.merge(SegmentationAccumulator(5)), em::Error);
  CHECK_THROWS_AS(SegmentationAccumulator(0), em::Error);
}
