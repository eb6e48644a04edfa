// em::metrics::coco_evaluate against pycocotools: the shared real pair (pycocotools 2.0.11's printed numbers), random
// cases scored by pycocotools' own cocoeval.py (tests/golden/coco_random.json, scripts/golden/coco_random.py), and
// small cases checked by hand.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/metrics/coco.hpp"
#include "test_support.hpp"

using em::io::Json;
using namespace em::metrics;

namespace {

const Json& golden() {
  static const Json g = em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/coco_random.json");
  return g;
}

using em::data::CocoAnnotations;

// A hand-built annotation and the image it lies on.
struct Ann {
  std::int64_t image_id = 0;
  em::data::CocoBox box;
};

Ann box(std::int64_t id, std::int64_t image, std::int64_t cat, double x, double y, double w, double h,
        bool crowd = false) {
  Ann a;
  a.image_id = image;
  a.box.id = id, a.box.category_id = cat, a.box.bbox = {x, y, w, h}, a.box.area = w * h, a.box.iscrowd = crowd;
  return a;
}

// Images 1..n_images of 640x480 and categories 1..n_cats ("cat1", ...), each annotation on its image.
CocoAnnotations ground_truth(const std::vector<Ann>& anns, int n_images = 3, int n_cats = 2) {
  CocoAnnotations gt;
  for (int i = 1; i <= n_images; ++i) {
    em::data::CocoImageRecord img;
    img.id = i, img.file_name = std::to_string(i) + ".jpg", img.width = 640, img.height = 480;
    gt.images.push_back(img);
  }
  for (int c = 1; c <= n_cats; ++c) gt.categories.push_back({c, "cat" + std::to_string(c), "", 0});
  for (const auto& a : anns) gt.images.at(static_cast<std::size_t>(a.image_id - 1)).boxes.push_back(a.box);
  gt.num_annotations = anns.size();
  return gt;
}

CocoDetection det(std::int64_t image, std::int64_t cat, std::array<double, 4> b, double score) {
  CocoDetection d;
  d.image_id = image, d.category_id = cat, d.bbox = b, d.score = score;
  return d;
}

double stat(const CocoEvalResult& r, const std::string& name) {
  for (std::size_t i = 0; i < kCocoStatNames.size(); ++i)
    if (name == kCocoStatNames[i]) return r.stats[i];
  FAIL("no stat " << name);
  return 0;
}

}  // namespace

TEST_CASE("the shared real pair gives pycocotools 2.0.11's twelve numbers to 1e-9", "[coco]") {
  auto dir = em::test::shared_path("data/coco-eval-pair");
  if (!dir) return;
  Json expected = em::io::read_json_file((*dir / "expected_pycocotools.json").string())["stats"];
  Json got = evaluate_coco_files((*dir / "ground_truth.json").string(), (*dir / "detections.json").string());
  double worst = 0;
  for (const char* name : kCocoStatNames) {
    INFO(name);
    CHECK(got[name].get<double>() == Approx(expected[name].get<double>()).margin(1e-9).epsilon(0));
    worst = std::max(worst, std::fabs(got[name].get<double>() - expected[name].get<double>()));
  }
  WARN("coco-eval-pair: max |diff| vs pycocotools = " << worst);
  // The pair's ground-truth "area" fields put every box in "large"; w*h would not.
  CHECK(got["APs"].get<double>() == -1.0);
  CHECK(got["APm"].get<double>() == -1.0);
  CHECK(got["per_class"].is_object());
}

TEST_CASE("random cases give pycocotools' numbers: summary and per-class AP, bit for bit", "[coco]") {
  for (const Json& c : golden()["cases"]) {
    INFO("case " << c["name"].get<std::string>());
    CocoAnnotations gt = em::data::parse_coco_ground_truth(c["ground_truth"].dump(), "gt");
    CocoResults res = parse_coco_results(c["detections"].dump(), "dets");
    CocoEvalResult r = coco_evaluate(gt, res);
    for (std::size_t i = 0; i < kCocoStatNames.size(); ++i) {
      INFO(kCocoStatNames[i]);
      CHECK(r.stats[i] == c["stats"][kCocoStatNames[i]].get<double>());
    }
    const Json& pc = c["per_class"];
    REQUIRE(pc.size() == r.K);
    for (std::size_t k = 0; k < r.K; ++k) {
      INFO("category " << r.category_ids[k]);
      CHECK(r.category_ids[k] == pc[k]["category_id"].get<std::int64_t>());
      CHECK(r.ap_per_category[k] == pc[k]["AP"].get<double>());
      CHECK(r.ap50_per_category[k] == pc[k]["AP50"].get<double>());
    }
  }
}

TEST_CASE("the thresholds are numpy's linspace doubles", "[coco]") {
  CocoEvalParams p;
  std::vector<double> iou = golden()["iou_thresholds"].get<std::vector<double>>();
  std::vector<double> rec = golden()["recall_thresholds"].get<std::vector<double>>();
  CHECK(p.iou_thresholds == iou);  // exact: 0.8999999999999999, not 0.9
  CHECK(p.recall_thresholds == rec);
}

TEST_CASE("the result does not depend on the number of threads", "[coco]") {
  const Json& c = golden()["cases"][3];
  CocoAnnotations gt = em::data::parse_coco_ground_truth(c["ground_truth"].dump(), "gt");
  CocoResults res = parse_coco_results(c["detections"].dump(), "dets");
  CocoEvalParams one, four;
  one.threads = 1;
  four.threads = 4;
  CocoEvalResult a = coco_evaluate(gt, res, one), b = coco_evaluate(gt, res, four);
  CHECK(a.stats == b.stats);
  CHECK(a.precision == b.precision);
  CHECK(a.recall == b.recall);
}

TEST_CASE("perfect detections score 1 everywhere", "[coco]") {
  // One box per (image, category): small (100 px²), medium (2500) and large (40000).
  std::vector<Ann> anns = {box(1, 1, 1, 10, 10, 10, 10), box(2, 2, 1, 100, 100, 50, 50), box(3, 3, 2, 0, 0, 200, 200)};
  auto gt = ground_truth(anns);
  CocoResults res;
  for (const auto& a : anns) res.detections.push_back(det(a.image_id, a.box.category_id, a.box.bbox, 0.9));
  CocoEvalResult r = coco_evaluate(gt, res);
  for (std::size_t i = 0; i < 12; ++i) {
    INFO(kCocoStatNames[i]);
    CHECK(r.stats[i] == Approx(1.0).margin(1e-12));
  }
  REQUIRE(r.ap_per_category.size() == 2);
  CHECK(r.ap_per_category[0] == Approx(1.0).margin(1e-12));  // 1 / (1 + np.spacing(1)), as pycocotools
  CHECK(r.ap_per_category[1] == Approx(1.0).margin(1e-12));
}

TEST_CASE("no detections score 0 where ground truth exists and -1 where none does", "[coco]") {
  auto gt = ground_truth({box(1, 1, 1, 0, 0, 50, 50), box(2, 2, 2, 0, 0, 60, 60)});  // two medium boxes
  CocoEvalResult r = coco_evaluate(gt, CocoResults{});
  CHECK(stat(r, "AP") == 0.0);
  CHECK(stat(r, "AR100") == 0.0);
  CHECK(stat(r, "APm") == 0.0);
  CHECK(stat(r, "APs") == -1.0);
  CHECK(stat(r, "APl") == -1.0);
  CHECK(stat(r, "ARl") == -1.0);
  Json j = to_json(r);
  CHECK(j["per_class"]["cat1"]["AP"].get<double>() == 0.0);
}

TEST_CASE("a crowd region absorbs detections inside it instead of counting them as false positives", "[coco]") {
  // Gt: a person box, and a crowd region beside it. Two higher-scored detections fall inside the crowd region
  // (IoU with a crowd = intersection / detection area = 1), the third is the person.
  std::vector<Ann> anns = {box(1, 1, 1, 0, 0, 100, 100), box(2, 1, 1, 150, 0, 100, 100, true)};
  CocoResults res;
  res.detections = {det(1, 1, {160, 10, 50, 50}, 0.95), det(1, 1, {170, 20, 40, 40}, 0.92),
                    det(1, 1, {0, 0, 100, 100}, 0.9)};
  CocoEvalResult with_crowd = coco_evaluate(ground_truth(anns), res);
  CHECK(stat(with_crowd, "AP") == Approx(1.0).margin(1e-12));
  CHECK(stat(with_crowd, "AR100") == 1.0);

  // Without the crowd region both are false positives ranked above the true one: precision 1/3 at every recall.
  anns.pop_back();
  CocoEvalResult without = coco_evaluate(ground_truth(anns), res);
  CHECK(stat(without, "AP") == Approx(1.0 / 3.0).margin(1e-12));
  CHECK(stat(without, "AR100") == 1.0);
}

TEST_CASE("a category without ground truth is -1 and left out of the means", "[coco]") {
  auto gt = ground_truth({box(1, 1, 1, 0, 0, 50, 50)});
  CocoResults res;
  res.detections = {det(1, 1, {0, 0, 50, 50}, 0.9), det(1, 2, {100, 100, 30, 30}, 0.99)};
  CocoEvalResult r = coco_evaluate(gt, res);
  REQUIRE(r.K == 2);
  CHECK(r.ap_per_category[0] == Approx(1.0).margin(1e-12));
  CHECK(r.ap_per_category[1] == -1.0);
  CHECK(r.ap50_per_category[1] == -1.0);
  CHECK(stat(r, "AP") == Approx(1.0).margin(1e-12));  // not (1 + 0) / 2
  Json j = to_json(r);
  CHECK(j["per_class"]["cat2"]["AP"].get<double>() == -1.0);
}

TEST_CASE("detections beyond maxDets per image are cut after sorting by score", "[coco]") {
  // 101 detections on one image: 100 false positives scored above the only true one, which falls past maxDets=100.
  auto gt = ground_truth({box(1, 1, 1, 0, 0, 50, 50)});
  CocoResults res;
  for (int i = 0; i < 100; ++i) res.detections.push_back(det(1, 1, {300, 300, 20, 20}, 0.9));
  res.detections.push_back(det(1, 1, {0, 0, 50, 50}, 0.1));
  CocoEvalResult r = coco_evaluate(gt, res);
  CHECK(stat(r, "AR100") == 0.0);
  CHECK(stat(r, "AP") == 0.0);
}

TEST_CASE("results are read as loadRes does: extra fields ignored, area from the box", "[coco]") {
  std::string gt_text = R"({"images": [{"id": 7, "file_name": "a.jpg"}], "categories": [{"id": 3, "name": "car"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0}]})";
  // The detection claims area 1e6 and iscrowd 1; loadRes overwrites both (area 400 = small).
  std::string dt_text = R"([{"image_id": 7, "category_id": 3, "bbox": [0, 0, 20, 20], "score": 0.5, "area": 1e6,
    "iscrowd": 1, "segmentation": [], "category_name": "car"}])";
  CocoEvalResult r = coco_evaluate(em::data::parse_coco_ground_truth(gt_text, "gt"), parse_coco_results(dt_text, "dt"));
  CHECK(stat(r, "APs") == Approx(1.0).margin(1e-12));
  CHECK(stat(r, "APl") == -1.0);
}

TEST_CASE("ground truth without an area field falls back to w*h", "[coco]") {
  std::string gt_text = R"({"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 200, 200]}]})";
  CocoAnnotations gt = em::data::parse_coco_ground_truth(gt_text, "gt");
  CHECK(gt.images[0].boxes[0].area == 40000.0);
  CHECK_FALSE(gt.images[0].boxes[0].iscrowd);
}

TEST_CASE("bad inputs are errors that name the file, the record and the field", "[coco]") {
  auto gt = ground_truth({box(1, 1, 1, 0, 0, 50, 50)});
  CocoResults res;
  res.detections = {det(42, 1, {0, 0, 50, 50}, 0.9)};
  CHECK_THROWS_WITH(coco_evaluate(gt, res), Catch::Contains("image_id 42"));

  CHECK_THROWS_WITH(parse_coco_results(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5], "score": 1}])", "d.json"),
                    Catch::Contains("d.json: [0].bbox") && Catch::Contains("got 3"));
  CHECK_THROWS_WITH(parse_coco_results(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}])", "d.json"),
                    Catch::Contains("\"score\""));
  CHECK_THROWS_WITH(parse_coco_results(R"({"annotations": []})", "d.json"), Catch::Contains("JSON array"));
  CHECK_THROWS_WITH(parse_coco_results("[{", "d.json"), Catch::Contains("d.json: invalid JSON"));
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [], "annotations": []})", "g.json"),
                    Catch::Contains("g.json") && Catch::Contains("categories"));
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [{"id": 1}], "categories": [],
      "annotations": [{"id": 1, "image_id": 1.5, "category_id": 1, "bbox": [0, 0, 1, 1]}]})", "g.json"),
                    Catch::Contains("g.json: annotations[0].image_id"));
  // Two annotations with one id: pycocotools would evaluate one box twice and lose the other, even when one of
  // them lies on an image the ground truth lacks.
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [{"id": 1}], "categories": [{"id": 1}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50]},
                      {"id": 5, "image_id": 9, "category_id": 1, "bbox": [0, 0, 50, 50]}]})", "g.json"),
                    Catch::Contains("g.json: annotations[1].id: duplicate annotation id 5 (also annotations[0])"));
  CocoEvalParams p;
  p.max_dets = {10, 1, 100};
  CHECK_THROWS_AS(coco_evaluate(gt, CocoResults{}, p), em::UsageError);
}

TEST_CASE("to_json has the twelve keys and per_class by name", "[coco]") {
  auto gt = ground_truth({box(1, 1, 1, 0, 0, 50, 50)});
  gt.categories[1].name = "cat1";  // a duplicate name keeps both entries
  CocoEvalResult r = coco_evaluate(gt, CocoResults{});
  Json j = to_json(r);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs",
                                         "ARm", "ARl", "per_class"});
  CHECK(j["per_class"].contains("cat1"));
  CHECK(j["per_class"].contains("cat1 (id 2)"));
  Json named = to_json(r, {"person", "dog"});
  CHECK(named["per_class"].contains("dog"));
  CHECK_THROWS(to_json(r, {"only one"}));
  CHECK(format_coco_summary(r).find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = "
                                    "0.000") != std::string::npos);
}

// Hidden benchmark (run explicitly): em_unit_tests "[.coco-bench]". 5,000 images x 100 detections, 80 categories,
// built like scripts/bench/coco_synthetic.py; times parsing the results JSON and the evaluation separately.
// EM_COCO_BENCH_DIR=DIR (files from coco_synthetic.py) times evaluate_coco_files on them instead.
TEST_CASE("benchmark: 5,000 images x 100 detections", "[.coco-bench]") {
  // Wall and CPU seconds (CPU: all threads of the process; on a busy machine it is the steadier number).
  struct Stopwatch {
    std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
    std::clock_t cpu = std::clock();
    std::string lap() {
      auto w = std::chrono::steady_clock::now();
      std::clock_t c = std::clock();
      std::string s = fmt::format("{:.3f} s wall, {:.3f} s CPU", std::chrono::duration<double>(w - wall).count(),
                                  static_cast<double>(c - cpu) / CLOCKS_PER_SEC);
      wall = w, cpu = c;
      return s;
    }
  };
  if (const char* dir = std::getenv("EM_COCO_BENCH_DIR")) {
    Stopwatch sw;
    CocoAnnotations gt = em::data::read_coco_ground_truth(std::string(dir) + "/ground_truth.json");
    CocoResults res = load_coco_results(std::string(dir) + "/results.json");
    std::string load = sw.lap();
    CocoEvalResult r = coco_evaluate(gt, res);
    std::string eval = sw.lap();
    CocoEvalParams one;
    one.threads = 1;
    CocoEvalResult r1 = coco_evaluate(gt, res, one);
    std::string eval1 = sw.lap();
    CHECK(r1.stats == r.stats);
    WARN(dir << ": " << res.detections.size() << " detections, " << gt.num_annotations << " gt boxes; load "
              << load << "; evaluate " << eval << " (all cores), " << eval1 << " (1 thread); AP " << r.stats[0]);
    return;
  }
  std::mt19937_64 rng(0);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> n01(0, 1);
  const int images = 5000, dets_per_image = 100, cats = 80;
  CocoAnnotations gt;
  for (int c = 1; c <= cats; ++c) gt.categories.push_back({c, "class" + std::to_string(c), "", 0});
  Json dets = Json::array();
  std::int64_t ann_id = 1;
  const double sizes[3] = {16, 64, 200};
  for (int img = 1; img <= images; ++img) {
    gt.images.emplace_back();
    gt.images.back().id = img, gt.images.back().width = 640, gt.images.back().height = 480;
    std::vector<em::data::CocoBox>& boxes = gt.images.back().boxes;
    int n_gt = static_cast<int>(u(rng) * 15);
    for (int j = 0; j < n_gt; ++j) {
      double s = sizes[rng() % 3], w = 4 + u(rng) * (s - 4), h = 4 + u(rng) * (s - 4);
      auto a = box(ann_id++, img, 1 + static_cast<std::int64_t>(rng() % cats), u(rng) * (640 - w), u(rng) * (480 - h),
                   w, h, u(rng) < 0.02);
      boxes.push_back(a.box);
      ++gt.num_annotations;
    }
    for (int j = 0; j < dets_per_image; ++j) {
      std::array<double, 4> b;
      std::int64_t cat;
      if (!boxes.empty() && u(rng) < 0.7) {
        const auto& g = boxes[rng() % boxes.size()];
        b = {g.bbox[0] + n01(rng) * 0.1 * g.bbox[2], g.bbox[1] + n01(rng) * 0.1 * g.bbox[3],
             g.bbox[2] * (0.8 + 0.4 * u(rng)), g.bbox[3] * (0.8 + 0.4 * u(rng))};
        cat = u(rng) < 0.1 ? 1 + static_cast<std::int64_t>(rng() % cats) : g.category_id;
      } else {
        double s = sizes[rng() % 3], w = 4 + u(rng) * (s - 4), h = 4 + u(rng) * (s - 4);
        b = {u(rng) * (640 - w), u(rng) * (480 - h), w, h};
        cat = 1 + static_cast<std::int64_t>(rng() % cats);
      }
      dets.push_back({{"image_id", img}, {"category_id", cat}, {"bbox", b}, {"score", u(rng)}});
    }
  }
  std::string text = dets.dump();
  Stopwatch sw;
  CocoResults res = parse_coco_results(text, "bench");
  std::string parse = sw.lap();
  CocoEvalResult r = coco_evaluate(gt, res);
  std::string eval = sw.lap();
  CocoEvalParams one;
  one.threads = 1;
  CocoEvalResult r1 = coco_evaluate(gt, res, one);
  std::string eval1 = sw.lap();
  CHECK(r1.stats == r.stats);
  WARN(res.detections.size() << " detections (" << text.size() / 1e6 << " MB JSON), " << gt.num_annotations
                             << " gt boxes: parse " << parse << "; evaluate " << eval << " (all cores), " << eval1
                             << " (1 thread); AP " << r.stats[0]);
}
