// Exact minimum-cost assignment for rectangular cost matrices (the linear sum assignment problem), as DETR's Hungarian
// matcher needs it: same optimum, and the same choice among equal optima, as scipy.optimize.linear_sum_assignment.
#pragma once
#include <cstdint>
#include <vector>

namespace em::models {

// One assignment: rows[k] is matched to cols[k]; min(num_rows, num_cols) pairs, sorted by row (scipy's order).
struct Assignment {
  std::vector<int64_t> rows;
  std::vector<int64_t> cols;
  double cost = 0;  // the sum of the matched entries
};

// Solves min sum cost[rows[k], cols[k]] over one-to-one matchings of size min(num_rows, num_cols). `cost` is row-major
// num_rows x num_cols. O(n^2 m) time (n = the smaller side), O(n m) memory. +inf entries are allowed (forbidden pairs)
// as long as a finite matching exists; NaN or -inf entries, and infeasible matrices, throw em::Error.
Assignment linear_sum_assignment(const double* cost, int64_t num_rows, int64_t num_cols);
Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t num_rows, int64_t num_cols);

}  // namespace em::models
