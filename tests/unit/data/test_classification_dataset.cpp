// The classification layout scan: sorted labels and files, hidden and non-image files skipped, errors named.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/data/validate.hpp"
#include "em/io/file.hpp"
#include "test_support.hpp"

#include <filesystem>

namespace fs = std::filesystem;
using em::data::ClassificationDataset;

namespace {
const fs::path kGolden = fs::path(EM_SOURCE_DIR) / "tests/golden/image";

void put(const fs::path& path, const std::string& bytes) { em::io::write_file_atomic(path, bytes); }

std::string png_bytes() { return em::io::read_file((kGolden / "rgb_37x23.png").string()); }

std::string scan_error(const fs::path& dir, bool require_validation = true) {
  try {
    ClassificationDataset::scan(dir.string(), require_validation);
  } catch (const em::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("labels are the sorted train folder names and files come in label then name order", "[data][dataset]") {
  em::test::TempDir tmp;
  std::string png = png_bytes();
  put(tmp / "train/dog/b.png", png);
  put(tmp / "train/dog/a.PNG", png);
  put(tmp / "train/cat/z.jpg", png);  // extension decides listing; em-validate decodes
  put(tmp / "train/cat/notes.txt", "text");
  put(tmp / "train/cat/.hidden.png", png);
  put(tmp / "train/.ipynb_checkpoints/x.png", png);
  put(tmp / "train/README.md", "readme");
  put(tmp / "validation/dog/v.png", png);
  ClassificationDataset ds = ClassificationDataset::scan(tmp.path().string());
  CHECK(ds.labels == std::vector<std::string>{"cat", "dog"});
  REQUIRE(ds.train.size() == 3);
  CHECK(fs::path(ds.train[0].path).filename() == "z.jpg");
  CHECK(ds.train[0].label == 0);
  CHECK(fs::path(ds.train[1].path).filename() == "a.PNG");
  CHECK(fs::path(ds.train[2].path).filename() == "b.png");
  CHECK(ds.train[2].label == 1);
  REQUIRE(ds.validation.size() == 1);
  CHECK(ds.validation[0].label == 1);
  CHECK(ds.test.empty());
  CHECK(ds.ignored_files == 1);
  CHECK_THROWS_WITH(ds.split("test"), Catch::Contains("test: missing split folder"));
  CHECK_THROWS_AS(ds.split("dev"), em::UsageError);
}

TEST_CASE("scan names the folder for a missing dataset, split, images or an unknown validation label",
          "[data][dataset]") {
  em::test::TempDir tmp;
  std::string png = png_bytes();
  CHECK_THAT(scan_error(tmp / "nope"), Catch::Contains("nope: no such dataset folder"));
  CHECK_THAT(scan_error(tmp.path()), Catch::Contains("train: missing split folder"));
  fs::create_directories(tmp / "train/cat");
  CHECK_THAT(scan_error(tmp.path()), Catch::Contains("train: no images"));
  put(tmp / "train/cat/a.png", png);
  CHECK_THAT(scan_error(tmp.path()), Catch::Contains("validation: missing split folder"));
  CHECK(scan_error(tmp.path(), false).empty());
  put(tmp / "validation/dog/a.png", png);
  CHECK_THAT(scan_error(tmp.path()), Catch::Contains("validation/dog: label \"dog\" is not a train label (train has: cat)"));
  fs::remove_all(tmp / "validation/dog");
  put(tmp / "validation/cat/a.png", png);
  fs::create_directories(tmp / "test/cat");
  CHECK_THAT(scan_error(tmp.path()), Catch::Contains("test: no images"));
  put(tmp / "test/cat/t.png", png);
  CHECK(ClassificationDataset::scan(tmp.path().string()).test.size() == 1);
}

TEST_CASE("image extensions are recognised case-insensitively", "[data][dataset]") {
  for (const char* p : {"a.png", "a.JPG", "a.jpeg", "x/y.Bmp", "a.gif", "a.tga", "a.ppm", "a.pgm", "a.pnm"})
    CHECK(em::data::has_image_extension(p));
  for (const char* p : {"a.txt", "a.json", "png", "a.png.bak", "a.webp", "a.tif"})
    CHECK_FALSE(em::data::has_image_extension(p));
}

TEST_CASE("validation lists every problem with its path, and a clean dataset is valid", "[data][validate]") {
  em::test::TempDir tmp;
  std::string png = png_bytes();
  const fs::path d = tmp.path();
  put(d / "train/cat/good.png", png);
  put(d / "train/cat/empty.png", "");
  put(d / "train/cat/text.png", "this is not a picture\n");
  put(d / "train/cat/cut.png", png.substr(0, png.size() / 2));
  put(d / "train/dog/good.png", png);
  fs::create_directories(d / "train/fish");
  put(d / "train/stray.png", png);
  put(d / "validation/cat/good.png", png);
  put(d / "validation/bird/good.png", png);

  em::data::ValidationReport report = em::data::validate_classification(d.string(), 2);
  CHECK_FALSE(report.ok());
  auto reason_of = [&](const fs::path& path) -> std::string {
    for (const auto& p : report.problems)
      if (p.path == path.string()) return p.reason;
    return "<not reported>";
  };
  CHECK(reason_of(d / "train/cat/empty.png") == "not an image (zero bytes)");
  CHECK(reason_of(d / "train/cat/text.png") == "not an image (unknown format: text)");
  CHECK(reason_of(d / "train/cat/cut.png") == "not an image (truncated PNG)");
  CHECK(reason_of(d / "train/fish") == "empty label folder (no images)");
  CHECK_THAT(reason_of(d / "train/stray.png"), Catch::StartsWith("image outside a label folder"));
  CHECK(reason_of(d / "validation/bird") == "label \"bird\" is not a train label (train has: cat, dog, fish)");
  CHECK(report.problems.size() == 6);

  const auto& s = report.summary;
  CHECK(s["labels"] == em::io::Json({"cat", "dog", "fish"}));
  CHECK(s["splits"]["train"]["images"] == 2);
  CHECK(s["splits"]["train"]["per_label"]["cat"] == 1);
  CHECK(s["image_size"]["most_common"]["width"] == 37);
  CHECK(s["channels"]["3"] == 4);
  CHECK(report.to_json()["valid"] == false);
  CHECK_THAT(report.to_text(), Catch::Contains("train/cat/cut.png: not an image (truncated PNG)"));

  // Fix every problem: valid.
  for (const char* bad : {"train/cat/empty.png", "train/cat/text.png", "train/cat/cut.png", "train/stray.png"})
    fs::remove(d / bad);
  fs::remove_all(d / "train/fish");
  fs::remove_all(d / "validation/bird");
  report = em::data::validate_classification(d.string(), 2);
  CHECK(report.ok());
  CHECK(report.problems.empty());
  CHECK_THAT(report.to_text(), Catch::EndsWith("valid\n"));
}

TEST_CASE("validation reports a missing dataset folder and missing splits as problems", "[data][validate]") {
  em::test::TempDir tmp;
  auto report = em::data::validate_classification((tmp / "absent").string());
  REQUIRE(report.problems.size() == 1);
  CHECK_THAT(report.problems[0].reason, Catch::StartsWith("no such dataset folder"));
  report = em::data::validate_classification(tmp.path().string());
  CHECK(report.problems.size() == 2);  // train and validation
  // Every algorithm has a validator: an empty folder is an invalid dataset of each, not a usage error.
  for (auto algo : {em::Algo::classification, em::Algo::segmentation, em::Algo::detection})
    CHECK_FALSE(em::data::validate_dataset(algo, tmp.path().string()).ok());
}
