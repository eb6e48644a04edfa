// libFuzzer target: metrics/classification_io's JSONL readers (em-eval's prediction file, a truth file) and the
// scoring of a pair, as em-metrics --algo classification runs it. Input: PREDICTIONS, or TRUTH "\n#####\n"
// PREDICTIONS.
#include "fuzz_support.hpp"
#include "em/metrics/classification_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Plain variables: C++17 lambdas cannot capture structured bindings.
  const auto parts = em::fuzz::split_pair(em::fuzz::bytes_of(data, size));
  const std::string_view first = parts.first, second = parts.second;
  if (second.empty()) {
    em::fuzz::expect_clean([&] { em::metrics::parse_predictions_jsonl(std::string(first), "pred.jsonl"); });
    em::fuzz::expect_clean([&] { em::metrics::parse_truth_jsonl(std::string(first), "truth.jsonl"); });
    return 0;
  }
  em::fuzz::expect_clean([&] {
    const auto truth = em::metrics::parse_truth_jsonl(std::string(first), "truth.jsonl");
    const auto predictions = em::metrics::parse_predictions_jsonl(std::string(second), "pred.jsonl");
    em::metrics::ClassificationMatchOptions options;
    options.allow_missing = size % 2 == 1;
    const em::metrics::ClassificationScore score = em::metrics::score_predictions(truth, predictions, options);
    EM_FUZZ_CHECK(score.num_scored <= score.num_truth);
  });
  return 0;
}
