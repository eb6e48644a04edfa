// What every validator shares: decode_all's per-file reasons (without the path, in input order, on any number of
// threads), reason_about() keeping a path's reason apart from other messages, and the image-size summary.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/coco_dataset.hpp"
#include "em/data/validate.hpp"
#include "em/io/file.hpp"
#include "test_support.hpp"

#include <stdexcept>

namespace {
const std::filesystem::path kGolden = std::filesystem::path(EM_SOURCE_DIR) / "tests/golden/image";
}

TEST_CASE("decode_all gives each file's header or its reason without the path, in input order", "[data][validate]") {
  em::test::TempDir tmp;
  const std::string png = (kGolden / "rgb_37x23.png").string();
  const std::string gray = (kGolden / "gray_29x31.png").string();
  const std::string bytes = em::io::read_file(png);
  em::io::write_file_atomic(tmp / "cut.png", bytes.substr(0, bytes.size() / 2));
  em::io::write_file_atomic(tmp / "zero.png", "");
  const std::vector<std::string> paths = {png, (tmp / "cut.png").string(), (tmp / "missing.png").string(), gray,
                                          (tmp / "zero.png").string(), tmp.path().string()};
  for (int threads : {1, 3, 0}) {
    INFO("threads " << threads);
    const std::vector<em::data::DecodedInfo> d = em::data::decode_all(paths, threads);
    REQUIRE(d.size() == paths.size());
    CHECK(d[0].error.empty());
    CHECK((d[0].width == 37 && d[0].height == 23 && d[0].channels == 3 && d[0].format == "PNG"));
    CHECK(d[1].error == "not an image (truncated PNG)");
    CHECK(d[2].error == "cannot open (No such file or directory)");
    CHECK((d[3].error.empty() && d[3].channels == 1 && d[3].width == 29));
    CHECK(d[4].error == "not an image (zero bytes)");
    CHECK(d[5].error == "is a folder, expected a file");
  }
  CHECK(em::data::decode_all({}, 4).empty());
}

TEST_CASE("reason_about drops the path only from an error about that very path", "[data][validate]") {
  CHECK(em::data::reason_about(em::Error("a.png", "not an image (zero bytes)"), "a.png") ==
        "not an image (zero bytes)");
  CHECK(em::data::reason_about(em::Error("b.png", "not an image (zero bytes)"), "a.png") ==
        "b.png: not an image (zero bytes)");
  CHECK(em::data::reason_about(em::Error("a.png: no path kept"), "a.png") == "a.png: no path kept");
  CHECK(em::data::reason_about(std::runtime_error("out of memory"), "a.png") == "out of memory");
}

TEST_CASE("the image-size summary gives the range and the most common size, the smallest on a tie",
          "[data][validate]") {
  em::data::ImageSizeCounts sizes;
  CHECK(sizes.empty());
  sizes.add(640, 480);
  sizes.add(320, 240);
  sizes.add(640, 480);
  sizes.add(320, 240);
  sizes.add(800, 200);
  CHECK_FALSE(sizes.empty());
  const em::io::Json j = sizes.to_json();
  CHECK(em::io::dump_json(j) == R"({"width":{"min":320,"max":800},"height":{"min":200,"max":480},)"
                                R"("most_common":{"width":320,"height":240,"images":2},"distinct_sizes":3})");
}

TEST_CASE("a missing dataset folder names the algorithm's layout from its row", "[data][validate]") {
  const std::string missing = "/nonexistent/dataset";
  const auto c = em::data::validate_dataset(em::Algo::classification, missing);
  REQUIRE(c.problems.size() == 1);
  CHECK(c.algo == "classification");
  CHECK(c.problems[0].reason == "no such dataset folder (expected DIR/train/{label}/IMAGE)");
  const auto d = em::data::validate_dataset(em::Algo::detection, missing);
  REQUIRE(d.problems.size() == 1);
  CHECK(d.problems[0].reason == std::string("no such dataset folder (expected DIR/train/") +
                                    em::data::kCocoAnnotationFile + " with the images beside it)");
  const auto s = em::data::validate_dataset(em::Algo::segmentation, missing);
  CHECK(s.problems.at(0).reason ==
        "no such dataset folder (expected DIR/train/train.json, DIR/resources/id2label.json)");
}

TEST_CASE("the text report rounds its numbers for people; the JSON report keeps them whole", "[data][validate]") {
  em::data::ValidationReport report;
  report.algo = "segmentation";
  report.dir = "d";
  report.summary["pixel_frequency"] = {{"sky", 0.123456789012345}, {"road", 2.5e-07}, {"count", 12345678}};
  const std::string text = report.to_text();
  CHECK_THAT(text, Catch::Contains("  pixel_frequency: sky 0.1235, road 2.5e-07, count 12345678\n"));
  CHECK_THAT(text, !Catch::Contains("0.12345678"));
  CHECK(report.to_json()["summary"]["pixel_frequency"]["sky"].get<double>() == 0.123456789012345);
}

TEST_CASE("the text summary is tables and lines, not JSON: a column per split, a row per label", "[data][validate]") {
  em::data::ValidationReport report;
  report.algo = "classification";
  report.dir = "d";
  report.summary = em::io::parse_json(R"({
      "labels": ["cat", "dog"], "num_labels": 2,
      "splits": {"train": {"images": 41, "per_label": {"cat": 20, "dog": 21}},
                 "validation": {"images": 7, "per_label": {"cat": 7}}},
      "image_size": {"width": {"min": 28, "max": 640}, "distinct_sizes": 3},
      "channels": {"1": 2, "3": 46},
      "categories": [{"id": 1, "name": "person", "label": 0}, {"id": 18, "name": "dog", "label": 1}],
      "duplicate_images": {"train & validation": 2}, "formats": {}})",
                                              "summary");
  const std::string expected = R"(classification dataset d
summary:
  labels: cat, dog
  num_labels: 2
  splits:
                train  validation
    images         41           7
    per_label:
      cat          20           7
      dog          21           -
  image_size:
    width: min 28, max 640
    distinct_sizes: 3
  channels:
    1: 2
    3: 46
  categories:
    id  name    label
     1  person      0
    18  dog         1
  duplicate_images:
    train & validation: 2
  formats: (none)
valid
)";
  const std::string text = report.to_text();
  CHECK(text == expected);
  CHECK(text.find('{') == std::string::npos);
}
