// guess_layout / layout_mismatch: each layout is told from the others by its names and JSON files alone, a folder
// that shows no layout or two is left to the validators, and the message names the evidence and the --algo to use.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/layout.hpp"
#include "em/data/validate.hpp"
#include "em/io/file.hpp"
#include "test_support.hpp"

#include <filesystem>

namespace fs = std::filesystem;
using em::Algo;
using em::data::guess_layout;
using em::data::layout_mismatch;

namespace {
const fs::path kGolden = fs::path(EM_SOURCE_DIR) / "tests/golden/image";

void put(const fs::path& path, const std::string& bytes = "") { em::io::write_file_atomic(path, bytes); }

std::string png() { return em::io::read_file((kGolden / "rgb_37x23.png").string()); }

// The seed's segmentation layout for one split: SPLIT/images, SPLIT/annotations, SPLIT/SPLIT.json.
void segmentation_split(const fs::path& dir, const std::string& split) {
  put(dir / split / "images/0001.png", png());
  put(dir / split / "annotations/0001.png", png());
  put(dir / split / (split + ".json"), R"([{"image": "images/0001.png", "seg_map": "annotations/0001.png"}])");
}

void coco_split(const fs::path& dir, const std::string& split, const std::string& file = "_annotations.coco.json") {
  put(dir / split / "0001.jpg", png());
  put(dir / split / file, R"({"images": [{"id": 1, "file_name": "0001.jpg"}], "annotations": [], "categories": []})");
}
}  // namespace

TEST_CASE("a segmentation folder is told from a classification one, naming what gave it away", "[data][layout]") {
  em::test::TempDir tmp;
  segmentation_split(tmp.path(), "train");
  segmentation_split(tmp.path(), "validation");
  const auto guess = guess_layout(tmp.path().string());
  REQUIRE(guess);
  CHECK(guess->algo == Algo::segmentation);
  CHECK(guess->evidence == std::vector<std::string>{"train/images", "train/annotations", "train/train.json"});
  CHECK(layout_mismatch(Algo::classification, tmp.path().string()) ==
        "looks like a segmentation dataset (train/images, train/annotations, train/train.json), not classification: "
        "use --algo segmentation");
  CHECK_FALSE(layout_mismatch(Algo::segmentation, tmp.path().string()));
}

TEST_CASE("the folders a segmentation list names are not labels, whatever they are called", "[data][layout]") {
  em::test::TempDir tmp;
  put(tmp / "train/img/a.png", png());
  put(tmp / "train/masks/a.png", png());
  put(tmp / "train/train.json", R"([{"image": "img/a.png", "seg_map": "masks/a.png"}])");
  CHECK(layout_mismatch(Algo::classification, tmp.path().string()) ==
        "looks like a segmentation dataset (train/img, train/masks, train/train.json), not classification: use "
        "--algo segmentation");
}

TEST_CASE("a COCO file makes a detection folder, by its name or by its content", "[data][layout]") {
  em::test::TempDir tmp;
  coco_split(tmp.path(), "train");
  CHECK(layout_mismatch(Algo::segmentation, tmp.path().string()) ==
        "looks like a detection dataset (train/_annotations.coco.json), not segmentation: use --algo detection");
  em::test::TempDir other;
  coco_split(other.path(), "train", "instances_train.json");
  put(other / "train/images/0002.jpg", png());
  const auto guess = guess_layout(other.path().string());
  REQUIRE(guess);
  CHECK(guess->algo == Algo::detection);
  CHECK(guess->evidence == std::vector<std::string>{"train/instances_train.json"});
}

TEST_CASE("label folders of images make a classification folder", "[data][layout]") {
  em::test::TempDir tmp;
  for (const char* label : {"ant", "bee", "cat", "dog", "elk"}) put(tmp / "train" / label / "a.png", png());
  put(tmp / "train/README.md", "notes");
  put(tmp / "train/.hidden/a.png", png());
  put(tmp / "validation/ant/a.png", png());
  CHECK_FALSE(layout_mismatch(Algo::classification, tmp.path().string()));
  CHECK(layout_mismatch(Algo::detection, tmp.path().string()) ==
        "looks like a classification dataset (label folders train/ant, train/bee, train/cat, ... (5 in all)), not "
        "detection: use --algo classification");
}

TEST_CASE("a folder with no layout or the signs of two is left to the validators", "[data][layout]") {
  em::test::TempDir empty;
  CHECK_FALSE(guess_layout(empty.path().string()));
  CHECK_FALSE(guess_layout((empty / "absent").string()));
  em::test::TempDir lost_json;  // a segmentation split whose train.json is missing: not two labels
  put(lost_json / "train/images/a.png", png());
  put(lost_json / "train/annotations/a.png", png());
  CHECK_FALSE(guess_layout(lost_json.path().string()));
  em::test::TempDir both;  // label folders beside a COCO file: no guess, so no algorithm is refused
  coco_split(both.path(), "train");
  put(both / "train/cat/a.png", png());
  CHECK_FALSE(guess_layout(both.path().string()));
  for (Algo algo : {Algo::classification, Algo::segmentation, Algo::detection})
    CHECK_FALSE(layout_mismatch(algo, both.path().string()));
}

TEST_CASE("em-validate reports another algorithm's layout as its one problem; require_layout throws it",
          "[data][layout]") {
  em::test::TempDir tmp;
  segmentation_split(tmp.path(), "train");
  const auto report = em::data::validate_dataset(Algo::classification, tmp.path().string());
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].path == tmp.path().string());
  CHECK_THAT(report.problems[0].reason, Catch::StartsWith("looks like a segmentation dataset"));
  try {
    em::data::require_layout(Algo::detection, tmp.path().string());
    FAIL("no error");
  } catch (const em::Error& e) {
    CHECK(e.path() == tmp.path().string());
    CHECK(e.code() == em::ExitCode::failure);
    CHECK_THAT(e.reason(), Catch::EndsWith("not detection: use --algo segmentation"));
  }
}

TEST_CASE("the shared real datasets are recognised as their own layouts", "[data][layout]") {
  const auto camvid = em::test::shared_path("data/camvid-mini");
  if (!camvid) return;
  const auto coco = em::test::shared_path("data/coco-mini");
  if (!coco) return;
  CHECK(layout_mismatch(Algo::classification, camvid->string()) ==
        "looks like a segmentation dataset (train/images, train/annotations, train/train.json), not classification: "
        "use --algo segmentation");
  CHECK_FALSE(layout_mismatch(Algo::segmentation, camvid->string()));
  CHECK_FALSE(layout_mismatch(Algo::detection, coco->string()));
  CHECK(guess_layout(coco->string())->algo == Algo::detection);
}
