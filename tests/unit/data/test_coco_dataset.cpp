// The COCO detection layout: the reader lists every problem of a broken annotation file with the JSON path of the
// offending element, maps category ids to labels in id order, and em-validate checks images against the file.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/coco_dataset.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "test_support.hpp"

#include <filesystem>

namespace fs = std::filesystem;
using em::data::CocoSplit;
using em::io::Json;

namespace {

// A valid two-image file; tests break one thing at a time.
Json base_coco() {
  return Json::parse(R"({
    "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
               {"id": 2, "file_name": "b.png", "width": 40, "height": 30}],
    "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0},
                    {"id": 11, "image_id": 2, "category_id": 7, "bbox": [20, 10, 15, 15], "area": 225, "iscrowd": 0},
                    {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0, 0, 40, 30], "area": 1200, "iscrowd": 1}]
  })");
}

CocoSplit parse(const Json& doc) {
  return em::data::parse_coco_split(em::io::dump_json(doc), "d/train/_annotations.coco.json", "d/train", "train");
}

// Every problem's "path: reason" line, for matching.
std::vector<std::string> lines(const std::vector<em::data::Problem>& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems) out.push_back(p.path + ": " + p.reason);
  return out;
}

bool has_line(const std::vector<em::data::Problem>& problems, const std::string& prefix, const std::string& part) {
  for (const auto& l : lines(problems))
    if (l.rfind(prefix, 0) == 0 && l.find(part) != std::string::npos) return true;
  return false;
}

const std::string kFile = "d/train/_annotations.coco.json: ";

}  // namespace

TEST_CASE("a valid COCO file parses: images, boxes, categories sorted by id", "[data][coco]") {
  CocoSplit s = parse(base_coco());
  INFO(Catch::Detail::stringify(lines(s.problems)));
  CHECK(s.ok());
  CHECK(s.repairable.empty());
  REQUIRE(s.images.size() == 2);
  CHECK(s.images[0].path == "d/train/a.png");
  CHECK(s.images[1].boxes.size() == 2);
  CHECK(s.images[1].boxes[1].iscrowd);
  REQUIRE(s.categories.size() == 2);
  CHECK(s.categories[0].id == 3);  // id order, not file order
  CHECK(s.categories[0].name == "cat");
  CHECK(s.num_annotations == 3);
}

TEST_CASE("broken COCO files: each problem is reported with the JSON path of the element", "[data][coco]") {
  struct Case {
    const char* what;
    std::function<void(Json&)> edit;
    std::string prefix, part;
    bool repairable = false;
    bool alone = true;  // false: an image entry without a usable id also makes its annotations' image_id unknown
  };
  std::vector<Case> cases = {
      {"image without id", [](Json& d) { d["images"][1].erase("id"); }, kFile + "images[1]", "missing field \"id\"",
       false, false},
      {"string image id", [](Json& d) { d["images"][0]["id"] = "one"; }, kFile + "images[0].id",
       "expected an integer id", false, false},
      {"duplicate image id", [](Json& d) { d["images"][1]["id"] = 1; }, kFile + "images[1].id",
       "duplicate image id 1 (also images[0])", false, false},  // and image 2's annotations now point nowhere
      {"empty file_name", [](Json& d) { d["images"][1]["file_name"] = ""; }, kFile + "images[1].file_name",
       "expected a file name"},
      {"negative width", [](Json& d) { d["images"][0]["width"] = -4; }, kFile + "images[0].width",
       "expected a positive integer"},
      {"image not an object", [](Json& d) { d["images"][1] = 5; }, kFile + "images[1]", "expected an object", false,
       false},
      {"duplicate category id", [](Json& d) { d["categories"][1]["id"] = 7; }, kFile + "categories[1].id",
       "duplicate category id 7", false, false},
      {"duplicate category name", [](Json& d) { d["categories"][1]["name"] = "dog"; }, kFile + "categories[1].name",
       "duplicate category name \"dog\""},
      {"category without name", [](Json& d) { d["categories"][0].erase("name"); }, kFile + "categories[0]",
       "missing field \"name\""},
      {"unknown image_id", [](Json& d) { d["annotations"][1]["image_id"] = 99; }, kFile + "annotations[1].image_id",
       "99 is not the id of an entry of \"images\""},
      {"unknown category_id", [](Json& d) { d["annotations"][0]["category_id"] = 5; },
       kFile + "annotations[0].category_id", "5 is not the id of an entry of \"categories\""},
      {"duplicate annotation id", [](Json& d) { d["annotations"][2]["id"] = 10; }, kFile + "annotations[2].id",
       "duplicate annotation id 10 (also annotations[0])"},
      {"bbox of 3 numbers", [](Json& d) { d["annotations"][1]["bbox"] = {1, 2, 3}; }, kFile + "annotations[1].bbox",
       "expected [x, y, w, h]"},
      {"bbox with a string", [](Json& d) { d["annotations"][0]["bbox"][2] = "10"; }, kFile + "annotations[0].bbox",
       "expected [x, y, w, h]"},
      {"annotation without bbox", [](Json& d) { d["annotations"][0].erase("bbox"); }, kFile + "annotations[0]",
       "missing field \"bbox\""},
      {"negative area", [](Json& d) { d["annotations"][0]["area"] = -1; }, kFile + "annotations[0].area",
       "expected a number >= 0"},
      {"iscrowd 2", [](Json& d) { d["annotations"][0]["iscrowd"] = 2; }, kFile + "annotations[0].iscrowd",
       "expected 0 or 1"},
      {"no annotations list", [](Json& d) { d.erase("annotations"); }, kFile, "missing field \"annotations\""},
      {"images not a list", [](Json& d) { d["images"] = Json::object(); }, kFile + "images", "expected an array"},
      {"zero-width box", [](Json& d) { d["annotations"][0]["bbox"] = {2, 3, 0, 8}; }, kFile + "annotations[0].bbox",
       "degenerate box [2, 3, 0, 8]", true},
      {"negative-height box", [](Json& d) { d["annotations"][1]["bbox"] = {2, 3, 5, -1}; },
       kFile + "annotations[1].bbox", "degenerate box", true},
      {"box past the right edge", [](Json& d) { d["annotations"][1]["bbox"] = {30, 10, 15, 5}; },
       kFile + "annotations[1].bbox", "x + w = 45 > width 40", true},
      {"box above the image", [](Json& d) { d["annotations"][0]["bbox"] = {2, -3, 5, 5}; },
       kFile + "annotations[0].bbox", "y = -3 < 0", true},
      {"box entirely outside", [](Json& d) { d["annotations"][0]["bbox"] = {50, 3, 5, 5}; },
       kFile + "annotations[0].bbox", "lies entirely outside the 40x30 image", true},
      {"image without height", [](Json& d) { d["images"][1].erase("height"); }, kFile + "images[1]",
       "missing field \"height\"", true},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      Json doc = base_coco();
      c.edit(doc);
      CocoSplit s = parse(doc);
      const auto& list = c.repairable ? s.repairable : s.problems;
      INFO("problems: " << Catch::Detail::stringify(lines(s.problems)));
      INFO("repairable: " << Catch::Detail::stringify(lines(s.repairable)));
      CHECK(has_line(list, c.prefix, c.part));
      if (c.alone) CHECK(list.size() == 1);  // exactly this one, nothing cascades
      if (c.repairable) CHECK(s.ok());
      if (!c.repairable) CHECK_THROWS_WITH(s.require_ok(), Catch::Contains("em-validate"));
    }
  }
}

TEST_CASE("a file with many problems lists them all and keeps its valid entries", "[data][coco]") {
  Json doc = base_coco();
  doc["images"].push_back({{"id", 2}, {"file_name", "c.png"}, {"width", 40}, {"height", 30}});  // duplicate id
  doc["annotations"][0]["category_id"] = 99;
  doc["annotations"][1]["bbox"] = {1, 1, 0, 0};
  CocoSplit s = parse(doc);
  CHECK(s.problems.size() == 2);
  CHECK(s.repairable.size() == 1);
  CHECK(s.images.size() == 2);  // a.png and b.png survive
  CHECK(s.num_annotations == 2);

  CocoSplit invalid = em::data::parse_coco_split("{\"images\": [", "x.json", "d", "train");
  REQUIRE(invalid.problems.size() == 1);
  CHECK_THAT(invalid.problems[0].reason, Catch::StartsWith("invalid JSON"));
  CocoSplit array = em::data::parse_coco_split("[]", "x.json", "d", "train");
  CHECK_THAT(array.problems.at(0).reason, Catch::Contains("expected a COCO object"));
}

TEST_CASE("category ids from 0 (Roboflow) or sparse map to contiguous labels in id order", "[data][coco]") {
  em::test::TempDir dir;
  Json doc = base_coco();
  doc["categories"] = Json::parse(
      R"([{"id": 9, "name": "truck"}, {"id": 0, "name": "vehicles", "supercategory": "none"}, {"id": 3, "name": "cat"},
          {"id": 7, "name": "dog"}])");
  for (const char* split : {"train", "validation"}) {
    fs::create_directories(dir / split);
    em::io::write_file_atomic(dir / split / "_annotations.coco.json", em::io::dump_json(doc));
  }
  auto ds = em::data::DetectionDataset::load(dir.path().string());
  CHECK(ds.labels() == std::vector<std::string>{"vehicles", "cat", "dog", "truck"});
  CHECK(ds.label_of(0) == 0);
  CHECK(ds.label_of(3) == 1);
  CHECK(ds.label_of(7) == 2);
  CHECK(ds.label_of(9) == 3);
  CHECK(ds.label_of(4) == -1);
  CHECK(ds.train.warnings.size() == 2);  // "vehicles" (id 0: the placeholder) and "truck" have no boxes

  // A validation category that train lacks, or names differently, is refused.
  doc["categories"][2]["name"] = "kitten";
  em::io::write_file_atomic(dir / "validation" / "_annotations.coco.json", em::io::dump_json(doc));
  CHECK_THROWS_WITH(em::data::DetectionDataset::load(dir.path().string()),
                    Catch::Contains("categories[2].name: category 3 is \"kitten\" here but \"cat\" in train"));
  // A broken train file stops training with the JSON path and a pointer to em-validate.
  doc = base_coco();
  doc["annotations"][0]["image_id"] = 5;
  em::io::write_file_atomic(dir / "train" / "_annotations.coco.json", em::io::dump_json(doc));
  CHECK_THROWS_WITH(em::data::DetectionDataset::load(dir.path().string()),
                    Catch::Contains("annotations[0].image_id: 5 is not the id") && Catch::Contains("em-validate"));
  CHECK_THROWS_WITH(em::data::DetectionDataset::load((dir / "nothing").string()),
                    Catch::Contains("no such dataset folder"));
}

namespace {

void write_gray_png(const fs::path& path, int width, int height) {
  em::io::Image img;
  img.width = width;
  img.height = height;
  img.channels = 3;
  img.pixels.assign(img.size(), 90);
  em::io::write_png(path.string(), img);
}

// A dataset folder with train = validation = base_coco() and its two 40x30 images.
void write_dataset(const fs::path& dir, const Json& train_doc) {
  for (const char* split : {"train", "validation"}) {
    fs::create_directories(dir / split);
    write_gray_png(dir / split / "a.png", 40, 30);
    write_gray_png(dir / split / "b.png", 40, 30);
    em::io::write_file_atomic(dir / split / "_annotations.coco.json",
                              em::io::dump_json(std::string(split) == "train" ? train_doc : base_coco()));
  }
}

}  // namespace

TEST_CASE("em-validate --algo detection: images checked against the file, problems with JSON paths", "[data][coco]") {
  em::test::TempDir dir;
  write_dataset(dir.path(), base_coco());
  auto ok = em::data::validate_dataset(em::Algo::detection, dir.path().string(), 1);
  INFO(ok.to_text());
  CHECK(ok.ok());
  const Json& train = ok.summary["splits"]["train"];
  CHECK(train["images"] == 2);
  CHECK(train["boxes"] == 2);
  CHECK(train["crowd_boxes"] == 1);
  CHECK(train["boxes_per_class"]["cat"] == 1);
  CHECK(train["boxes_per_class"]["dog"] == 1);
  CHECK(train["box_sizes"]["small"] == 2);  // areas 80 and 225 < 32^2
  CHECK(ok.summary["categories"][0] == Json{{"id", 3}, {"name", "cat"}, {"label", 0}});

  // Missing, undecodable and wrongly sized images; a bad box; a validation category unknown to train.
  Json doc = base_coco();
  doc["images"].push_back({{"id", 3}, {"file_name", "missing.png"}, {"width", 40}, {"height", 30}});
  doc["images"].push_back({{"id", 4}, {"file_name", "text.png"}, {"width", 40}, {"height", 30}});
  doc["images"][1]["width"] = 50;
  doc["annotations"][0]["bbox"] = {2, 3, 0, 8};
  em::test::TempDir bad;
  write_dataset(bad.path(), doc);
  em::io::write_file_atomic(bad / "train" / "text.png", "not an image");
  Json val = base_coco();
  val["categories"].push_back({{"id", 42}, {"name", "owl"}});
  em::io::write_file_atomic(bad / "validation" / "_annotations.coco.json", em::io::dump_json(val));
  auto report = em::data::validate_dataset(em::Algo::detection, bad.path().string(), 1);
  INFO(report.to_text());
  CHECK_FALSE(report.ok());
  const std::string train_json = (bad / "train" / "_annotations.coco.json").string() + ": ";
  CHECK(has_line(report.problems, (bad / "train" / "missing.png").string(), "images[2].file_name"));
  CHECK(has_line(report.problems, (bad / "train" / "text.png").string(), "not an image"));
  CHECK(has_line(report.problems, train_json + "images[1]: width x height 50x30 disagrees with the file b.png (40x30)",
                 ""));
  CHECK(has_line(report.problems, train_json + "annotations[0].bbox: degenerate box", ""));
  CHECK(has_line(report.problems, (bad / "validation" / "_annotations.coco.json").string() + ": categories[2]",
                 "category 42 \"owl\" is not a train category"));
  CHECK(report.problems.size() == 5);
  Json j = report.to_json();
  CHECK(j["valid"] == false);
  CHECK(j["problems"].size() == 5);

  auto missing = em::data::validate_dataset(em::Algo::detection, (bad / "nope").string(), 1);
  CHECK_FALSE(missing.ok());
}

TEST_CASE("coco-mini (2 real COCO images) is valid; its summary counts boxes per class and by COCO size",
          "[data][coco]") {
  auto dir = em::test::shared_path("data/coco-mini");
  if (!dir) return;
  auto report = em::data::validate_dataset(em::Algo::detection, dir->string(), 1);
  INFO(report.to_text());
  CHECK(report.ok());
  const Json& train = report.summary["splits"]["train"];
  // Counted from the file with Python (scripts/golden has no reference for counting): 43 annotations, 3 crowd.
  CHECK(train["boxes"] == 40);
  CHECK(train["crowd_boxes"] == 3);
  CHECK(train["boxes_per_class"] == Json{{"person", 26}, {"truck", 2}, {"horse", 11}, {"sports ball", 1}});
  CHECK(train["box_sizes"] == Json{{"small", 12}, {"medium", 28}, {"large", 0}});
  CHECK(train["box_side_histogram"]["32-64"] == 12);
  CHECK(report.summary["categories"].size() == 4);
  CHECK(report.summary["categories"][3]["id"] == 37);
  CHECK(report.summary["categories"][3]["label"] == 3);

  auto ds = em::data::DetectionDataset::load(dir->string());
  CHECK(ds.labels() == std::vector<std::string>{"person", "truck", "horse", "sports ball"});
  CHECK(ds.train.images.size() == 2);
}

TEST_CASE("ground truth by pycocotools' rules: what COCO() accepts is read, the first problem throws", "[data][coco]") {
  // No file names or sizes, a nameless category, a repeated category id (the last name wins), a repeated name, an
  // annotation on an image the file lacks (never evaluated), one of an unknown category (kept; evaluation filters
  // it), a negative area and iscrowd 2 (its truth value).
  const std::string text = R"({"images": [{"id": 1}, {"id": 2, "width": "wide"}, {"id": 1, "file_name": "again.jpg"}],
    "categories": [{"id": 4}, {"id": 2, "name": "dog"}, {"id": 2, "name": "puppy"}, {"id": 3, "name": "puppy"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "area": -1, "iscrowd": 2},
                    {"id": 2, "image_id": 7, "category_id": 2, "bbox": [0, 0, 10, 10]},
                    {"id": 3, "image_id": 2, "category_id": 9, "bbox": [0, 0, 0, 10], "area": 5}]})";
  em::data::CocoAnnotations gt = em::data::parse_coco_ground_truth(text, "gt.json");
  REQUIRE(gt.images.size() == 2);  // one entry per id
  CHECK(gt.images[0].file_name.empty());
  CHECK(gt.images[1].width == 0);
  REQUIRE(gt.categories.size() == 3);
  CHECK(gt.categories[0].name == "puppy");  // id 2: the last name
  CHECK(gt.categories[1].name == "puppy");  // id 3
  CHECK(gt.categories[2].name == "4");      // nameless: its id
  REQUIRE(gt.images[0].boxes.size() == 1);
  CHECK(gt.images[0].boxes[0].area == -1);
  CHECK(gt.images[0].boxes[0].iscrowd);
  REQUIRE(gt.images[1].boxes.size() == 1);
  CHECK(gt.images[1].boxes[0].category_id == 9);
  CHECK(gt.num_annotations == 2);
  CHECK(em::data::parse_coco_ground_truth(R"({"images": [], "categories": []})", "gt.json").images.empty());

  // The dataset's rules refuse the same file.
  CHECK_FALSE(em::data::parse_coco_split(text, "gt.json", "d", "train").ok());
  // Problems both rule sets share throw at once, with the JSON path.
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [{"id": "x"}], "categories": []})", "gt.json"),
                    "gt.json: images[0].id: expected an integer id, got \"x\"");
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [], "categories": [{"id": 1, "name": 5}]})",
                                                      "gt.json"),
                    Catch::StartsWith("gt.json: categories[0].name: expected a category name"));
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth(R"({"images": [{"id": 1}], "categories": [],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "area": 1}]})", "gt.json"),
                    Catch::StartsWith("gt.json: annotations[0].bbox: expected [x, y, w, h] (4 numbers)"));
  CHECK_THROWS_WITH(em::data::parse_coco_ground_truth("[]", "gt.json"),
                    Catch::StartsWith("gt.json: expected a COCO object"));
}
