// libFuzzer target: metrics/coco_results' reader of COCO results files ([{"image_id", "category_id", "bbox",
// "score"}]) and, when the input holds a ground truth too, COCO evaluation of the pair, as em-metrics --algo detection
// runs it. Input: RESULTS, or GROUND_TRUTH "\n#####\n" RESULTS.
#include "fuzz_support.hpp"
#include "em/data/coco_file.hpp"
#include "em/metrics/coco.hpp"

#include <cmath>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Plain variables: C++17 lambdas cannot capture structured bindings.
  const auto parts = em::fuzz::split_pair(em::fuzz::bytes_of(data, size));
  const std::string_view first = parts.first, second = parts.second;
  if (second.empty()) {
    em::fuzz::expect_clean([&] { em::metrics::parse_coco_results(first, "fuzz.json"); });
    return 0;
  }
  em::fuzz::expect_clean([&] {
    const em::data::CocoAnnotations gt = em::data::parse_coco_ground_truth(first, "gt.json");
    const em::metrics::CocoResults results = em::metrics::parse_coco_results(second, "results.json");
    em::metrics::CocoEvalParams params;
    params.threads = 1;
    const em::metrics::CocoEvalResult r = em::metrics::coco_evaluate(gt, results, params);
    for (double s : r.stats) EM_FUZZ_CHECK(s == -1 || (s >= 0 && s <= 1));  // a NaN or a ratio past 1 is a bug
    em::metrics::to_json(r);
  });
  return 0;
}
