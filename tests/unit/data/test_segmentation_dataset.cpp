// The segmentation layout: split files parsed with entry indices, the accepted misspelt names, label maps checked (single
// channel, 8 bits, size, values), em-validate's full report and summary, and the real CamVid subset.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/segmentation_dataset.hpp"
#include "em/data/validate.hpp"
#include "em/io/file.hpp"
#include "segmentation_test_data.hpp"

#include <algorithm>

namespace fs = std::filesystem;
using em::data::SegmentationDataset;
using em::io::Json;
using em::test::make_image;
using Catch::Contains;

namespace {

// A 2x2 palette PNG (indices 0,1,2,1) and a 2x2 16-bit grayscale PNG (0,1,2,1), as PIL 9.4 writes them.
const std::string kPalettePng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x02\x03\x00\x00"
    "\x00\x0f\xd8\xe5\xb7\x00\x00\x00\x09\x50\x4c\x54\x45\x00\x00\x00\xff\x00\x00\x00\xff\x00\xf4\x83\xbf\x7e\x00\x00"
    "\x00\x0c\x49\x44\x41\x54\x78\xda\x63\x10\x60\x98\x00\x00\x00\xc4\x00\xa1\x28\xa1\x69\x3a\x00\x00\x00\x00\x49\x45"
    "\x4e\x44\xae\x42\x60\x82",
    90);
const std::string kGray16Png(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x10\x00\x00\x00"
    "\x00\x07\x4d\x8e\xbb\x00\x00\x00\x12\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x60\x60\x64\x62\x60\x62\x60\x00\x00\x00"
    "\x20\x00\x06\x72\xb4\x25\xf1\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    75);

em::io::Image constant_map(int width, int height, uint8_t value) {
  return make_image(width, height, 1, [&](int, int, int) { return value; });
}

// A valid dataset: labels a, b, c; train 2 maps of 4x3, validation 1.
void write_valid(em::test::SegmentationFolder& f) {
  f.labels({"a", "b", "c"});
  f.add_split("train", 2, [](int i) {
    // entry 0: row 0 = 255, rows 1-2 = 0; entry 1: column x = x % 3
    return i == 0 ? make_image(4, 3, 1, [](int y, int, int) { return static_cast<uint8_t>(y == 0 ? 255 : 0); })
                  : make_image(4, 3, 1, [](int, int x, int) { return static_cast<uint8_t>(x % 3); });
  });
  f.add_split("validation", 1, [](int) { return constant_map(4, 3, 2); });
  // Not train's entry 0 again (the folder's images are grey 10 * i): a copy would be warned about as leakage.
  f.image("validation", "images/0.png", make_image(4, 3, 3, [](int, int, int) { return uint8_t{7}; }));
}

bool has_problem(const em::data::ValidationReport& r, const std::string& path_part, const std::string& reason_part) {
  return std::any_of(r.problems.begin(), r.problems.end(), [&](const em::data::Problem& p) {
    return p.path.find(path_part) != std::string::npos && p.reason.find(reason_part) != std::string::npos;
  });
}
bool has_warning(const em::data::ValidationReport& r, const std::string& path_part, const std::string& reason_part) {
  return std::any_of(r.warnings.begin(), r.warnings.end(), [&](const em::data::Problem& p) {
    return p.path.find(path_part) != std::string::npos && p.reason.find(reason_part) != std::string::npos;
  });
}

std::string problems_text(const em::data::ValidationReport& r) { return r.to_text(); }

}  // namespace

TEST_CASE("a valid segmentation dataset scans in file order with seg_map paths kept for predictions",
          "[data][segmentation]") {
  em::test::SegmentationFolder f;
  write_valid(f);
  SegmentationDataset ds = SegmentationDataset::scan(f.dir.string());
  CHECK(ds.labels == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(ds.train.size() == 2);
  CHECK(ds.train[1].image == (f.dir / "train/images/1.png").string());
  CHECK(ds.train[1].seg_map == (f.dir / "train/annotations/1.png").string());
  CHECK(ds.train[1].seg_map_rel == "annotations/1.png");
  CHECK(ds.train[1].entry == 1);
  CHECK(ds.validation.size() == 1);
  CHECK(ds.test.empty());
  CHECK_THROWS_WITH(ds.split("test"), Contains("missing split folder"));
  CHECK_THROWS_AS(ds.split("dev"), em::UsageError);

  auto sample = em::data::read_segmentation_sample(ds.train[1], 3);
  CHECK(sample.image.channels == 3);
  CHECK(sample.label_map.channels == 1);
  CHECK(sample.label_map.at(0, 2, 0) == 2);
}

TEST_CASE("em-validate's segmentation summary counts pixels per class and split", "[data][segmentation][validate]") {
  em::test::SegmentationFolder f;
  write_valid(f);
  auto report = em::data::validate_dataset(em::Algo::segmentation, f.dir.string(), 2);
  INFO(report.to_text());
  CHECK(report.ok());
  CHECK(report.algo == "segmentation");
  const Json& train = report.summary["splits"]["train"];
  CHECK(train["entries"] == 2);
  CHECK(train["images"] == 2);
  CHECK(train["pixels"] == 24);
  // entry 0: 4 ignore + 8 "a"; entry 1: columns 0,3 -> a, 1 -> b, 2 -> c (3 rows each)
  CHECK(train["pixel_counts"]["a"] == 14);
  CHECK(train["pixel_counts"]["b"] == 3);
  CHECK(train["pixel_counts"]["c"] == 3);
  CHECK(train["pixel_counts"]["255 (ignore)"] == 4);
  CHECK(train["pixel_frequency"]["a"].get<double>() == Approx(14.0 / 24));
  CHECK(report.summary["splits"]["validation"]["pixel_counts"]["c"] == 12);
  CHECK(report.summary["num_labels"] == 3);
  CHECK(report.summary["image_size"]["most_common"]["width"] == 4);
  CHECK(!report.summary["splits"].contains("test"));
  CHECK(report.warnings.empty());
}

TEST_CASE("em-validate lists every segmentation problem with its file and entry", "[data][segmentation][validate]") {
  em::test::SegmentationFolder f;
  f.labels({"a", "b", "c"});
  // train: entry 0 fine; 1 size mismatch; 2 RGB map; 3 unknown values 7 and 9; 4 palette; 5 16-bit; 6 missing file;
  // 7 missing field; 8 not an object; 9 absolute path; 10 escaping path; 11 truncated image.
  f.image("train", "images/0.png", make_image(4, 3, 3, [](int, int, int) { return 5; }));
  f.image("train", "annotations/0.png", constant_map(4, 3, 1));
  f.image("train", "annotations/1.png", constant_map(5, 3, 1));
  f.image("train", "annotations/2.png", make_image(4, 3, 3, [](int, int, int) { return 1; }));
  f.image("train", "annotations/3.png", make_image(4, 3, 1, [](int y, int x, int) {
            return static_cast<uint8_t>(y == 0 && x == 0 ? 7 : y == 1 && x < 2 ? 9 : 255);
          }));
  em::io::write_file_atomic(f.dir / "train/annotations/4.png", kPalettePng);
  em::io::write_file_atomic(f.dir / "train/annotations/5.png", kGray16Png);
  f.image("train", "images/small.png", make_image(2, 2, 3, [](int, int, int) { return 5; }));
  std::string cut = em::io::read_file((f.dir / "train/images/0.png").string());
  em::io::write_file_atomic(f.dir / "train/images/cut.png", cut.substr(0, cut.size() / 2));
  Json train = Json::array();
  train.push_back({{"image", "images/0.png"}, {"seg_map", "annotations/0.png"}});
  train.push_back({{"image", "images/0.png"}, {"seg_map", "annotations/1.png"}});
  train.push_back({{"image", "images/0.png"}, {"seg_map", "annotations/2.png"}});
  train.push_back({{"image", "images/0.png"}, {"seg_map", "annotations/3.png"}});
  train.push_back({{"image", "images/small.png"}, {"seg_map", "annotations/4.png"}});
  train.push_back({{"image", "images/small.png"}, {"seg_map", "annotations/5.png"}});
  train.push_back({{"image", "images/gone.png"}, {"seg_map", "annotations/0.png"}});
  train.push_back({{"image", "images/0.png"}});
  train.push_back(42);
  train.push_back({{"image", "/etc/passwd"}, {"seg_map", "annotations/0.png"}});
  train.push_back({{"image", "images/0.png"}, {"seg_map", "../validation/annotations/0.png"}});
  train.push_back({{"image", "images/cut.png"}, {"seg_map", "annotations/0.png"}});
  f.split_file("train", train);
  // validation: invalid JSON in its third entry; test: the misspelt train.json, listing nothing.
  em::io::write_file_atomic(f.dir / "validation/validation.json",
                            "[\n {\"image\": \"a.png\", \"seg_map\": \"b.png\"},\n {\"image\": \"{x}.png\", "
                            "\"seg_map\": \"c.png\"},\n {\"image\": \"d.png\" \"seg_map\": \"e.png\"}\n]\n");
  f.split_file("test", Json::array(), "train.json");

  auto report = em::data::validate_segmentation(f.dir.string(), 2);
  INFO(problems_text(report));
  CHECK_FALSE(report.ok());
  CHECK(has_problem(report, "annotations/1.png", "seg map is 5x3 but its image"));
  CHECK(has_problem(report, "annotations/2.png", "3 channels"));
  CHECK(has_problem(report, "annotations/3.png", "neither a label id (0..2) nor 255 (ignore): 7, 9 (3 pixels)"));
  CHECK(has_problem(report, "annotations/4.png", "palette"));
  CHECK(has_problem(report, "annotations/5.png", "16-bit"));
  CHECK(has_problem(report, "train/images/gone.png", "no such file (listed as \"image\" by entry 6 of train.json)"));
  CHECK(has_problem(report, "train/train.json", "entry 7: missing field \"seg_map\""));
  CHECK(has_problem(report, "train/train.json", "entry 8: expected an object"));
  CHECK(has_problem(report, "train/train.json", "entry 9: field \"image\": \"/etc/passwd\" is an absolute path"));
  CHECK(has_problem(report, "train/train.json", "entry 10: field \"seg_map\""));
  CHECK(has_problem(report, "train/images/cut.png", "not an image (truncated PNG)"));
  CHECK(has_problem(report, "validation/validation.json", "invalid JSON: parse error at line 4"));
  CHECK(has_problem(report, "validation/validation.json", "(in entry 2)"));
  CHECK(has_problem(report, "test/train.json", "lists no images (an empty split)"));
  CHECK(has_warning(report, "test/train.json", "the seed's name for test/test.json"));
  CHECK(report.problems.size() == 13);
  // Entry 0 is valid and counted; the broken entries add no pixels.
  CHECK(report.summary["splits"]["train"]["entries"] == 12);
  CHECK(report.summary["splits"]["train"]["images"] == 1);
  CHECK(report.summary["splits"]["train"]["pixel_counts"]["b"] == 12);
  CHECK(has_warning(report, "train/train.json", "class 0 \"a\" has no pixel in train"));

  Json j = report.to_json();
  CHECK(j["valid"] == false);
  CHECK(j["problems"].size() == 13);
}

TEST_CASE("em-validate reports missing splits, a missing id2label.json and accepts the seed's id2lable.json",
          "[data][segmentation][validate]") {
  em::test::SegmentationFolder f;
  f.add_split("train", 1, [](int) { return constant_map(2, 2, 0); });
  auto report = em::data::validate_segmentation(f.dir.string(), 1);
  CHECK(has_problem(report, "resources/id2label.json", "missing: the class names"));
  CHECK(has_problem(report, "data/validation", "missing split folder"));
  CHECK(report.problems.size() == 2);

  f.labels({"a"}, "id2lable.json");
  f.add_split("validation", 1, [](int) { return constant_map(2, 2, 0); });
  fs::create_directories(f.dir / "test");
  report = em::data::validate_segmentation(f.dir.string(), 1);
  INFO(report.to_text());
  CHECK(has_warning(report, "resources/id2lable.json", "the seed's name"));
  CHECK(has_problem(report, "test/test.json", "missing: the split's list"));
  CHECK(report.problems.size() == 1);

  CHECK(has_problem(em::data::validate_segmentation((f.tmp / "nowhere").string()), "nowhere",
                    "no such dataset folder"));
}

TEST_CASE("scan fails on the first problem, names the file and points to em-validate", "[data][segmentation]") {
  em::test::SegmentationFolder f;
  auto error_of = [&](bool require_validation = true) {
    try {
      SegmentationDataset::scan(f.dir.string(), require_validation);
    } catch (const em::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error_of(), Contains("no such dataset folder"));
  f.add_split("train", 2, [](int) { return constant_map(2, 2, 0); });
  CHECK_THAT(error_of(), Contains("resources/id2label.json: not found"));
  f.labels({"a", "b"});
  CHECK_THAT(error_of(), Contains("validation: missing split folder"));
  CHECK(error_of(false).empty());
  f.split_file("validation", Json::array());
  CHECK_THAT(error_of(), Contains("validation.json: lists no images"));
  f.split_file("validation", Json::array({Json{{"image", "x.png"}}, Json{{"image", "y.png"}}}));
  CHECK_THAT(error_of(), Contains("x.png: no such file (listed as \"image\" by entry 0") &&
                             Contains("and 3 more problems") && Contains("em-validate --algo segmentation"));
  f.add_split("validation", 1, [](int) { return constant_map(2, 2, 1); });
  f.add_split("test", 1, [](int) { return constant_map(2, 2, 1); }, "train.json");
  auto ds = SegmentationDataset::scan(f.dir.string());
  CHECK(ds.test.size() == 1);  // the misspelt test/train.json
}

TEST_CASE("samples with a wrong map are refused with the file and the values", "[data][segmentation]") {
  em::test::SegmentationFolder f;
  f.labels({"a", "b"});
  f.add_split("train", 3, [](int i) {
    return i == 0 ? constant_map(3, 3, 1) : i == 1 ? constant_map(3, 3, 4) : constant_map(3, 3, 255);
  });
  f.image("train", "images/2.png", make_image(2, 3, 3, [](int, int, int) { return 0; }));
  auto ds = SegmentationDataset::scan(f.dir.string(), false);
  CHECK_NOTHROW(em::data::read_segmentation_sample(ds.train[0], 2));
  CHECK_THROWS_WITH(em::data::read_segmentation_sample(ds.train[1], 2),
                    Contains("annotations/1.png") && Contains("nor 255 (ignore): 4 (9 pixels)"));
  CHECK_THROWS_WITH(em::data::read_segmentation_sample(ds.train[2], 2),
                    Contains("seg map is 3x3 but its image") && Contains("is 2x3"));
  em::io::write_file_atomic(f.dir / "p.png", kPalettePng);
  CHECK_THROWS_WITH(em::data::read_label_map((f.dir / "p.png").string()), Contains("palette"));
}

TEST_CASE("id2label.json with bad keys or values is rejected with the key", "[data][segmentation]") {
  em::test::TempDir tmp;
  em::io::write_json_file(tmp / "a.json", Json::parse(R"({"0": "sky", "x": "road"})"));
  CHECK_THROWS_WITH(em::data::read_id2label(tmp / "a.json"), Contains("key \"x\""));
  em::io::write_json_file(tmp / "b.json", Json::parse(R"({"0": "sky", "1": 3})"));
  CHECK_THROWS_WITH(em::data::read_id2label(tmp / "b.json"), Contains("key \"1\""));
  em::io::write_json_file(tmp / "c.json", Json::parse(R"({"0": "sky", "2": "car"})"));
  CHECK(em::data::read_id2label(tmp / "c.json") == std::vector<std::string>{"sky", "1", "car"});
}

TEST_CASE("the real CamVid subset validates with 11 classes and every class present in train",
          "[data][segmentation][validate]") {
  auto camvid = em::test::shared_path("data/camvid-mini");
  if (!camvid) return;
  auto report = em::data::validate_segmentation(camvid->string(), 2);
  INFO(report.to_text());
  CHECK(report.ok());
  CHECK(report.warnings.empty());
  CHECK(report.summary["num_labels"] == 11);
  CHECK(report.summary["splits"]["train"]["images"] == 40);
  CHECK(report.summary["splits"]["validation"]["images"] == 12);
  CHECK(report.summary["splits"]["test"]["images"] == 12);
  CHECK(report.summary["splits"]["train"]["pixels"] == 40 * 480 * 360);
}
