// The prediction JSONL format, the truth readers (split folder, JSONL) and the pairing of predictions with truth.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/metrics/classification_io.hpp"
#include "test_support.hpp"

using namespace em::metrics;

namespace {
void touch(const std::filesystem::path& p) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}
std::string golden_cli(const std::string& name) {
  return std::string(EM_SOURCE_DIR) + "/tests/golden/classification_cli/" + name;
}
}  // namespace

TEST_CASE("prediction JSONL lines round-trip through write and read", "[metrics]") {
  em::test::TempDir tmp;
  std::vector<ClassificationPrediction> preds = {{"validation/cat/001.png", "cat", 0.93, 1, 0},
                                                 {"validation/dog/002.png", "dog", std::nullopt, std::nullopt, 0}};
  write_predictions_jsonl((tmp / "p.jsonl").string(), preds);
  CHECK(em::io::read_file((tmp / "p.jsonl").string()) ==
        "{\"image\":\"validation/cat/001.png\",\"label\":\"cat\",\"score\":0.93,\"label_id\":1}\n"
        "{\"image\":\"validation/dog/002.png\",\"label\":\"dog\"}\n");
  auto back = read_predictions_jsonl((tmp / "p.jsonl").string());
  REQUIRE(back.size() == 2);
  CHECK(back[0].image == preds[0].image);
  CHECK(back[0].score == 0.93);
  CHECK(back[0].label_id == 1);
  CHECK(back[1].line == 2);
  CHECK_FALSE(back[1].score.has_value());
}

TEST_CASE("bad prediction JSONL is rejected with the file and line number", "[metrics]") {
  const std::string ok = "{\"image\": \"a.png\", \"label\": \"cat\"}\n";
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "\n{\"image\": \"b.png\", \"label\": \n", "p.jsonl"),
                    Catch::StartsWith("p.jsonl:3: invalid JSON"));
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "[1, 2]\n", "p.jsonl"),
                    Catch::Contains("p.jsonl:2: expected a JSON object"));
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "{\"image\": \"b.png\"}\n", "p.jsonl"),
                    Catch::Contains("p.jsonl:2: missing field \"label\""));
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "{\"image\": \"b.png\", \"label\": 3}\n", "p.jsonl"),
                    Catch::Contains("p.jsonl:2: field \"label\": expected a string, got 3"));
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "{\"image\": \"b.png\", \"label\": \"x\", \"score\": \"hi\"}\n", "p"),
                    Catch::Contains("p:2: field \"score\""));
  CHECK_THROWS_WITH(parse_predictions_jsonl(ok + "{\"image\": \"./a.png\", \"label\": \"dog\"}\n", "p.jsonl"),
                    Catch::Contains("p.jsonl:2: image \"./a.png\" is predicted twice (also on line 1)"));
  CHECK_THROWS_WITH(parse_predictions_jsonl("\n  \n", "p.jsonl"), Catch::Contains("no predictions"));
  CHECK(parse_predictions_jsonl(ok + "\r\n\n", "p.jsonl").size() == 1);  // CRLF and blank lines are fine
}

TEST_CASE("a classification split folder lists images with paths relative to the dataset folder", "[metrics]") {
  em::test::TempDir tmp;
  touch(tmp / "validation/dog/b.png");
  touch(tmp / "validation/cat/2.JPG");
  touch(tmp / "validation/cat/1.png");
  touch(tmp / "validation/cat/notes.txt");
  touch(tmp / "validation/cat/.hidden.png");
  std::filesystem::create_directories(tmp / "validation/empty");
  auto truth = read_truth((tmp / "validation/").string());
  REQUIRE(truth.size() == 3);
  CHECK(truth[0].image == "validation/cat/1.png");
  CHECK(truth[1].image == "validation/cat/2.JPG");
  CHECK(truth[2].image == "validation/dog/b.png");
  CHECK(truth[2].label == "dog");
  std::filesystem::create_directories(tmp / "nothing/cat");
  CHECK_THROWS_WITH(read_truth((tmp / "nothing").string()), Catch::Contains("no images"));
}

TEST_CASE("scoring the golden JSONL files gives scikit-learn's numbers", "[metrics]") {
  auto score = score_prediction_files(golden_cli("truth.jsonl"), golden_cli("pred.jsonl"));
  auto expected = em::io::read_json_file(golden_cli("expected.json"));
  CHECK(score.num_scored == score.num_truth);
  CHECK(std::abs(score.metrics.accuracy - expected["accuracy"].get<double>()) <= 1e-12);
  CHECK(std::abs(score.metrics.precision - expected["precision"].get<double>()) <= 1e-12);
  CHECK(std::abs(score.metrics.recall - expected["recall"].get<double>()) <= 1e-12);
  CHECK(std::abs(score.metrics.f1 - expected["f1"].get<double>()) <= 1e-12);
}

TEST_CASE("predictions for unknown images fail; missing ones fail unless allowed", "[metrics]") {
  std::vector<ClassificationTruth> truth = {{"validation/cat/1.png", "cat", 0}, {"validation/dog/2.png", "dog", 0},
                                            {"validation/dog/3.png", "dog", 0}};
  std::vector<ClassificationPrediction> preds = {{"./validation/cat/1.png", "cat", 0.9, std::nullopt, 1},
                                                 {"validation/dog/2.png", "cat", 0.6, std::nullopt, 2}};
  CHECK_THROWS_WITH(score_predictions(truth, preds),
                    Catch::Contains("1 of 3 images in truth have no prediction: validation/dog/3.png") &&
                        Catch::Contains("--allow_missing"));
  ClassificationMatchOptions allow;
  allow.allow_missing = true;
  auto score = score_predictions(truth, preds, allow);
  CHECK(score.num_scored == 2);
  CHECK(score.metrics.accuracy == 0.5);
  CHECK(score.metrics.labels == std::vector<std::string>{"cat", "dog"});

  preds.push_back({"train/cat/9.png", "cat", 0.5, std::nullopt, 3});
  CHECK_THROWS_WITH(score_predictions(truth, preds, allow),
                    Catch::Contains("1 predicted image(s) are not in truth: train/cat/9.png (line 3)"));
}

TEST_CASE("a given label list orders the classes and rejects labels outside it", "[metrics]") {
  std::vector<ClassificationTruth> truth = {{"a.png", "dog", 0}, {"b.png", "cat", 0}};
  std::vector<ClassificationPrediction> preds = {{"a.png", "dog", {}, {}, 1}, {"b.png", "bird", {}, {}, 2}};
  ClassificationMatchOptions options;
  options.labels = {"dog", "cat", "bird"};
  auto score = score_predictions(truth, preds, options);
  CHECK(score.metrics.labels == options.labels);
  CHECK(score.metrics.confusion_matrix[1][2] == 1);  // truth cat predicted bird
  options.labels = {"dog", "cat"};
  CHECK_THROWS_WITH(score_predictions(truth, preds, options), Catch::Contains("predictions:2: label \"bird\""));
}
