// ClassificationAccumulator against scikit-learn's numbers (tests/golden/classification_metrics.json, written by
// scripts/golden/classification_metrics.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/metrics/classification.hpp"

using em::io::Json;
using em::metrics::ClassificationAccumulator;

namespace {

Json golden_cases() {
  return em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/classification_metrics.json")["cases"];
}

int64_t index_of(const std::vector<std::string>& labels, const std::string& name) {
  auto it = std::find(labels.begin(), labels.end(), name);
  REQUIRE(it != labels.end());
  return it - labels.begin();
}

em::metrics::ClassificationMetrics compute_case(const Json& c) {
  auto labels = c["labels"].get<std::vector<std::string>>();
  ClassificationAccumulator acc(labels);
  const auto& yt = c["y_true"];
  const auto& yp = c["y_pred"];
  for (std::size_t i = 0; i < yt.size(); ++i)
    acc.add(index_of(labels, yt[i].get<std::string>()), index_of(labels, yp[i].get<std::string>()));
  return acc.compute();
}

}  // namespace

TEST_CASE("classification metrics equal scikit-learn's accuracy and macro precision/recall/f1", "[metrics]") {
  for (const auto& c : golden_cases()) {
    INFO("case " << c["name"].get<std::string>());
    auto m = compute_case(c);
    CHECK(std::abs(m.accuracy - c["accuracy"].get<double>()) <= 1e-12);
    CHECK(std::abs(m.precision - c["precision"].get<double>()) <= 1e-12);
    CHECK(std::abs(m.recall - c["recall"].get<double>()) <= 1e-12);
    CHECK(std::abs(m.f1 - c["f1"].get<double>()) <= 1e-12);
  }
}

TEST_CASE("classification per-class values and confusion matrix equal scikit-learn's", "[metrics]") {
  for (const auto& c : golden_cases()) {
    INFO("case " << c["name"].get<std::string>());
    auto m = compute_case(c);
    const auto& pc = c["per_class"];
    REQUIRE(m.per_class.size() == c["labels"].size());
    for (std::size_t k = 0; k < m.per_class.size(); ++k) {
      INFO("class " << m.labels[k]);
      CHECK(std::abs(m.per_class[k].precision - pc["precision"][k].get<double>()) <= 1e-12);
      CHECK(std::abs(m.per_class[k].recall - pc["recall"][k].get<double>()) <= 1e-12);
      CHECK(std::abs(m.per_class[k].f1 - pc["f1"][k].get<double>()) <= 1e-12);
      CHECK(m.per_class[k].support == pc["support"][k].get<int64_t>());
    }
    CHECK(m.confusion_matrix == c["confusion_matrix"].get<std::vector<std::vector<int64_t>>>());
  }
}

TEST_CASE("a class with no truth and no prediction is left out of the macro means", "[metrics]") {
  ClassificationAccumulator acc({"bird", "cat", "dog"});
  acc.add(1, 1);
  acc.add(2, 1);
  acc.add(2, 2);
  auto m = acc.compute();
  CHECK_FALSE(m.per_class[0].present);
  CHECK(m.per_class[0].precision == 0.);
  // cat: P = 1/2, R = 1; dog: P = 1, R = 1/2 — the mean over the two present classes only.
  CHECK(m.precision == Approx(0.75));
  CHECK(m.recall == Approx(0.75));
}

TEST_CASE("classification metrics JSON has the documented keys, rows = truth", "[metrics]") {
  ClassificationAccumulator acc({"cat", "dog"});
  acc.add(0, 1);
  acc.add(0, 0);
  acc.add(1, 1);
  Json j = acc.compute().to_json();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"accuracy", "precision", "recall", "f1", "per_class", "confusion_matrix"});
  CHECK(j["per_class"]["cat"]["support"] == 2);
  CHECK(j["per_class"]["dog"]["precision"].get<double>() == Approx(0.5));
  CHECK(j["confusion_matrix"]["labels"] == Json::array({"cat", "dog"}));
  CHECK(j["confusion_matrix"]["matrix"] == Json::parse("[[1, 1], [0, 1]]"));
}

TEST_CASE("classification accumulator rejects bad indices, empty input and duplicate labels", "[metrics]") {
  ClassificationAccumulator acc({"cat", "dog"});
  CHECK_THROWS_AS(acc.add(2, 0), em::Error);
  CHECK_THROWS_AS(acc.add(0, -1), em::Error);
  CHECK_THROWS_WITH(acc.compute(), Catch::Contains("no samples"));
  CHECK_THROWS_AS(ClassificationAccumulator({}), em::Error);
  CHECK_THROWS_WITH(ClassificationAccumulator({"cat", "cat"}), Catch::Contains("twice"));
}

TEST_CASE("merged classification accumulators equal one accumulator over all samples", "[metrics]") {
  ClassificationAccumulator a({"x", "y", "z"}), b({"x", "y", "z"}), all({"x", "y", "z"});
  const int pairs[][2] = {{0, 0}, {1, 2}, {2, 2}, {1, 1}, {0, 2}, {2, 1}};
  for (int i = 0; i < 6; ++i) {
    (i % 2 ? a : b).add(pairs[i][0], pairs[i][1]);
    all.add(pairs[i][0], pairs[i][1]);
  }
  a.merge(b);
  CHECK(a.compute().to_json() == all.compute().to_json());
}
