// The exact assignment solver behind DETR's Hungarian matcher: optimum equal to brute force on many small random
// matrices (square, wide, tall, with ties), scipy's own answers on larger ones, and errors on unusable costs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/models/hungarian.hpp"

using em::models::Assignment;
using em::models::linear_sum_assignment;
using Catch::Matchers::Contains;

namespace {

// Minimum over all injective maps of the smaller side into the larger one, by enumerating permutations of the
// larger side's indices (the first min(n, m) of each permutation are the partners).
double brute_force_optimum(const std::vector<double>& c, int64_t rows, int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t small = wide ? rows : cols, large = wide ? cols : rows;
  std::vector<int64_t> perm(static_cast<size_t>(large));
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double sum = 0;
    for (int64_t k = 0; k < small; ++k) sum += wide ? c[k * cols + perm[k]] : c[perm[k] * cols + k];
    best = std::min(best, sum);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

void check_valid(const Assignment& a, int64_t rows, int64_t cols) {
  const size_t pairs = static_cast<size_t>(std::min(rows, cols));
  REQUIRE(a.rows.size() == pairs);
  REQUIRE(a.cols.size() == pairs);
  CHECK(std::is_sorted(a.rows.begin(), a.rows.end()));
  std::vector<int64_t> r = a.rows, c = a.cols;
  std::sort(r.begin(), r.end());
  std::sort(c.begin(), c.end());
  CHECK(std::adjacent_find(r.begin(), r.end()) == r.end());
  CHECK(std::adjacent_find(c.begin(), c.end()) == c.end());
  for (size_t k = 0; k < pairs; ++k) {
    CHECK(a.rows[k] >= 0);
    CHECK(a.rows[k] < rows);
    CHECK(a.cols[k] >= 0);
    CHECK(a.cols[k] < cols);
  }
}

}  // namespace

TEST_CASE("linear_sum_assignment reaches the brute-force optimum on random small matrices", "[detr][hungarian]") {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> real(-5.0, 10.0);
  std::uniform_int_distribution<int> small_int(0, 3);  // many ties
  std::uniform_int_distribution<int> size(1, 7);
  int checked = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    const int64_t rows = size(rng), cols = size(rng);
    const bool ties = trial % 2 == 1;
    std::vector<double> c(static_cast<size_t>(rows * cols));
    for (auto& v : c) v = ties ? small_int(rng) : real(rng);
    Assignment a = linear_sum_assignment(c, rows, cols);
    INFO("trial " << trial << ": " << rows << " x " << cols << (ties ? " (integer ties)" : ""));
    check_valid(a, rows, cols);
    double sum = 0;
    for (size_t k = 0; k < a.rows.size(); ++k) sum += c[a.rows[k] * cols + a.cols[k]];
    CHECK(a.cost == Approx(sum).margin(1e-12));
    const double best = brute_force_optimum(c, rows, cols);
    if (ties)
      CHECK(a.cost == best);  // integer sums are exact
    else
      CHECK(a.cost == Approx(best).margin(1e-9));
    ++checked;
  }
  CHECK(checked == 1500);
}

TEST_CASE("linear_sum_assignment gives scipy's assignment, ties included, on larger matrices", "[detr][hungarian]") {
  const auto golden = em::io::read_json_file(std::string(EM_SOURCE_DIR) + "/tests/golden/detr_reference.json");
  const auto& cases = golden.at("assignment_cases");
  REQUIRE(cases.size() >= 15);
  for (const auto& g : cases) {
    const int64_t rows = g.at("rows"), cols = g.at("cols");
    INFO(g.at("kind").get<std::string>() << " " << rows << " x " << cols);
    std::vector<double> c;
    for (const auto& row : g.at("cost"))
      for (const auto& v : row) c.push_back(v.get<double>());
    Assignment a = linear_sum_assignment(c, rows, cols);
    check_valid(a, rows, cols);
    CHECK(a.cost == Approx(g.at("optimum").get<double>()).margin(1e-9));
    CHECK(a.rows == g.at("row_ind").get<std::vector<int64_t>>());
    CHECK(a.cols == g.at("col_ind").get<std::vector<int64_t>>());
  }
}

TEST_CASE("linear_sum_assignment handles empty, forbidden (+inf) and unusable costs", "[detr][hungarian]") {
  CHECK(linear_sum_assignment(std::vector<double>{}, 0, 5).rows.empty());
  CHECK(linear_sum_assignment(std::vector<double>{}, 3, 0).cols.empty());

  const double inf = std::numeric_limits<double>::infinity();
  // Row 0 may only take column 1, so row 1 must take column 0 despite its cheaper column 1.
  Assignment a = linear_sum_assignment(std::vector<double>{inf, 5, 1, 0}, 2, 2);
  CHECK(a.rows == std::vector<int64_t>{0, 1});
  CHECK(a.cols == std::vector<int64_t>{1, 0});
  CHECK(a.cost == 6);

  CHECK_THROWS_WITH(linear_sum_assignment(std::vector<double>{inf, inf, 1, 0}, 2, 2), Contains("infeasible"));
  CHECK_THROWS_WITH(linear_sum_assignment(std::vector<double>{0, std::nan(""), 1, 0}, 2, 2),
                    Contains("cost[0][1]") && Contains("nan"));
  CHECK_THROWS_WITH(linear_sum_assignment(std::vector<double>{0, -inf, 1, 0}, 2, 2), Contains("cost[0][1]"));
  CHECK_THROWS_WITH(linear_sum_assignment(std::vector<double>{1, 2, 3}, 2, 2), Contains("3 costs") && Contains("2 x 2"));
}

TEST_CASE("linear_sum_assignment solves a 300 x 400 matrix quickly", "[detr][hungarian]") {
  // DETR-sized and beyond (100 queries x a few dozen boxes is typical); O(n^2 m) keeps this in milliseconds.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> real(0.0, 1.0);
  std::vector<double> c(300 * 400);
  for (auto& v : c) v = real(rng);
  Assignment a = linear_sum_assignment(c, 300, 400);
  check_valid(a, 300, 400);
  // Dual lower bound check: the optimum of a random uniform matrix is far below a random assignment's ~150.
  CHECK(a.cost < 10);
}
