// em-validate's duplicate images: copies within a split, leakage between splits naming both files, one warning for
// identical splits; by content, not by name.
#include <catch2/catch.hpp>

#include "em/data/duplicates.hpp"
#include "em/data/validate.hpp"
#include "em/io/file.hpp"
#include "test_support.hpp"

#include <filesystem>

namespace fs = std::filesystem;
using em::data::ImageFingerprint;

namespace {
const fs::path kGolden = fs::path(EM_SOURCE_DIR) / "tests/golden/image";

std::vector<std::string> reasons(const em::data::ValidationReport& report) {
  std::vector<std::string> out;
  for (const auto& w : report.warnings) out.push_back(w.path + ": " + w.reason);
  return out;
}
}  // namespace

TEST_CASE("a copy within a split and an image leaking from train into validation are named", "[data][duplicates]") {
  em::data::ValidationReport report;
  report.dir = "d";
  const std::vector<ImageFingerprint> images = {
      {"d/train/cat/a.png", "train", 10, 1}, {"d/train/cat/b.png", "train", 10, 2},
      {"d/train/dog/a2.png", "train", 10, 1},  // a copy of a.png
      {"d/train/dog/c.png", "train", 11, 2},   // same hash, another size: not a copy
      {"d/train/dog/gone.png", "train", 0, 0}, {"d/train/dog/gone2.png", "train", 0, 0},  // unreadable: left out
      {"d/validation/cat/v.png", "validation", 10, 2},  // b.png again
      {"d/validation/cat/w.png", "validation", 12, 3},
      {"d/validation/cat/w.png", "validation", 12, 3},  // one path listed twice: the validator's to report
  };
  em::data::report_duplicate_images(images, report);
  CHECK(reasons(report) ==
        std::vector<std::string>{
            "d/train/dog/a2.png: same bytes as d/train/cat/a.png: a duplicate image within train",
            "d/validation/cat/v.png: same image as d/train/cat/b.png: leakage from train into validation (scored on "
            "an image that is also in train)"});
  CHECK(report.summary["duplicate_images"] == em::io::Json({{"train", 1}, {"train & validation", 1}}));
}

TEST_CASE("splits that hold the same images get one warning, not one per image", "[data][duplicates]") {
  em::data::ValidationReport report;
  report.dir = "d";
  const std::vector<ImageFingerprint> images = {
      {"d/train/x.jpg", "train", 5, 1},      {"d/train/y.jpg", "train", 6, 2},
      {"d/validation/x.jpg", "validation", 5, 1}, {"d/validation/y.jpg", "validation", 6, 2},
      {"d/test/y.jpg", "test", 6, 2},  // a part of train: leakage, per image
  };
  em::data::report_duplicate_images(images, report);
  CHECK(reasons(report) ==
        std::vector<std::string>{
            "d/validation: identical to d/train: the same 2 image(s), by content; scores on validation say nothing "
            "about images a model trained on train has not seen",
            "d/test/y.jpg: same image as d/train/y.jpg: leakage from train into test (scored on an image that is also "
            "in train)",
            "d/test/y.jpg: same image as d/validation/y.jpg: leakage from validation into test (scored on an image "
            "that is also in validation)"});
  em::data::ValidationReport clean;
  em::data::report_duplicate_images({{"d/train/x.jpg", "train", 5, 1}, {"d/validation/y.jpg", "validation", 6, 2}},
                                    clean);
  CHECK(clean.warnings.empty());
  CHECK_FALSE(clean.summary.contains("duplicate_images"));
}

TEST_CASE("em-validate finds copied files by their bytes, whatever their names", "[data][duplicates]") {
  em::test::TempDir tmp;
  const std::string png = em::io::read_file((kGolden / "rgb_37x23.png").string());
  const std::string gray = em::io::read_file((kGolden / "gray_29x31.png").string());
  em::io::write_file_atomic(tmp / "train/cat/a.png", png);
  em::io::write_file_atomic(tmp / "train/cat/copy.png", png);
  em::io::write_file_atomic(tmp / "train/dog/b.png", gray);
  em::io::write_file_atomic(tmp / "validation/dog/renamed.png", gray);
  const auto report = em::data::validate_classification(tmp.path().string(), 1);
  CHECK(report.ok());  // duplicates are warnings
  REQUIRE(report.warnings.size() == 2);
  CHECK(report.warnings[0].path == (tmp / "train/cat/copy.png").string());
  CHECK(report.warnings[1].path == (tmp / "validation/dog/renamed.png").string());
  CHECK_THAT(report.warnings[1].reason, Catch::Contains((tmp / "train/dog/b.png").string()));
}
