#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "em/core/algo.hpp"
#include "em/core/error.hpp"

TEST_CASE("the algorithm table: one row per Algo, names and model types unique and round-tripping",
          "[core][algo]") {
  std::set<std::string> names, model_types;
  std::size_t rows = 0;
  for (const em::AlgoInfo* row = em::algorithms_begin(); row != em::algorithms_end(); ++row, ++rows) {
    CHECK(em::index_of(row->algo) == rows);
    CHECK(&em::algo_info(row->algo) == row);
    CHECK(em::parse_algo(row->name) == row->algo);
    CHECK(em::algo_name(row->algo) == row->name);
    CHECK(em::algo_of_model_type(row->model_type) == row->algo);
    CHECK(std::string(row->default_model) != "");
    CHECK(std::string(row->main_metric) != "");
    names.insert(row->name);
    model_types.insert(row->model_type);
  }
  CHECK(rows == em::kAlgoCount);
  CHECK(names.size() == em::kAlgoCount);
  CHECK(model_types.size() == em::kAlgoCount);
  CHECK(em::algo_info(em::Algo::detection).main_metric == std::string("AP"));
  CHECK(em::algo_info(em::Algo::segmentation).model_type == std::string("segformer"));
}

TEST_CASE("parse_algo names the valid algorithms; unknown model types have no algorithm", "[core][algo]") {
  REQUIRE_THROWS_AS(em::parse_algo("keypoints"), em::UsageError);
  REQUIRE_THROWS_WITH(em::parse_algo("keypoints"),
                      "--algo: unknown algorithm 'keypoints' (expected classification, segmentation or detection)");
  CHECK_FALSE(em::algo_of_model_type("vit").has_value());
  CHECK(em::algo_names() == "classification, segmentation or detection");
  CHECK(em::algo_names(" | ", " | ") == "classification | segmentation | detection");
  CHECK(em::model_type_names() == "resnet, segformer or detr");
}

TEST_CASE("AlgoSet holds exactly the algorithms it was given", "[core][algo]") {
  constexpr em::AlgoSet none;
  constexpr em::AlgoSet seg_det{em::Algo::segmentation, em::Algo::detection};
  static_assert(seg_det.contains(em::Algo::detection) && !seg_det.contains(em::Algo::classification));
  static_assert(em::AlgoSet::all().contains(em::Algo::classification));
  CHECK_FALSE(none.contains(em::Algo::classification));
  CHECK(seg_det.to_string() == "segmentation, detection");
  CHECK(em::AlgoSet::all().to_string() == "every algorithm");
  CHECK(em::AlgoSet{em::Algo::classification, em::Algo::segmentation, em::Algo::detection} == em::AlgoSet::all());
}

namespace {
struct Row {
  em::Algo algo;
};
constexpr Row kComplete[] = {{em::Algo::classification}, {em::Algo::segmentation}, {em::Algo::detection}};
constexpr Row kMissing[] = {{em::Algo::classification}, {em::Algo::segmentation}};
constexpr Row kOutOfOrder[] = {{em::Algo::segmentation}, {em::Algo::classification}, {em::Algo::detection}};
}  // namespace

TEST_CASE("one_row_per_algo: what each layer's table is checked with at compile time", "[core][algo]") {
  static_assert(em::one_row_per_algo(kComplete));
  static_assert(!em::one_row_per_algo(kMissing));
  static_assert(!em::one_row_per_algo(kOutOfOrder));
  SUCCEED();
}
