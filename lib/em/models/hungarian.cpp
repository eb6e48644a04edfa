#include "em/models/hungarian.hpp"

#include "em/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace em::models {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The shortest augmenting path method (Jonker-Volgenant, in the form of D. F. Crouse, "On implementing 2D rectangular
// assignment algorithms", IEEE TAES 52(4), 2016, pp. 1685-1686), for a wide matrix (n <= m). Rows are added one at a
// time; each addition runs a Dijkstra search on reduced costs c[i][j] - u[i] - v[j] from the new row to a free column
// and flips the matching along that path, keeping the duals feasible, so the result is an exact optimum.
//
// Ties are broken as scipy does, so that DETR's matching is the reference's even where two queries cost the same:
// columns are scanned from the last to the first, and among equally short paths a free column (which ends the
// search) wins.
class WideSolver {
 public:
  WideSolver(const double* cost, int64_t n, int64_t m)
      : c_(cost), n_(n), m_(m), u_(n, 0), v_(m, 0), dist_(m), pred_(m, -1), col_of_row_(n, -1), row_of_col_(m, -1),
        row_seen_(n), col_done_(m), todo_(m) {}

  // col_of_row()[i] for every row once solve() returned.
  const std::vector<int64_t>& solve() {
    for (int64_t row = 0; row < n_; ++row) add_row(row);
    return col_of_row_;
  }

 private:
  void add_row(int64_t start) {
    std::fill(row_seen_.begin(), row_seen_.end(), false);
    std::fill(col_done_.begin(), col_done_.end(), false);
    std::fill(dist_.begin(), dist_.end(), kInf);
    int64_t open = m_;
    for (int64_t k = 0; k < m_; ++k) todo_[k] = m_ - 1 - k;

    // Dijkstra over alternating paths: scan the current row's columns, settle the closest unsettled column; if it is
    // free the path ends there, otherwise continue from the row matched to it.
    double reach = 0;  // distance of the column settled last
    int64_t row = start;
    int64_t sink = -1;
    while (sink < 0) {
      row_seen_[row] = true;
      const double* c_row = c_ + row * m_;
      int64_t best = -1;
      double lowest = kInf;
      for (int64_t k = 0; k < open; ++k) {
        const int64_t col = todo_[k];
        const double d = reach + c_row[col] - u_[row] - v_[col];
        if (d < dist_[col]) {
          dist_[col] = d;
          pred_[col] = row;
        }
        if (dist_[col] < lowest || (dist_[col] == lowest && row_of_col_[col] < 0)) {
          lowest = dist_[col];
          best = k;
        }
      }
      if (lowest == kInf)
        fail("linear_sum_assignment: the cost matrix is infeasible (every remaining pair of row {} is +inf)", start);
      reach = lowest;
      const int64_t col = todo_[best];
      col_done_[col] = true;
      todo_[best] = todo_[--open];
      if (row_of_col_[col] < 0)
        sink = col;
      else
        row = row_of_col_[col];
    }

    // Dual update keeps reduced costs >= 0 and 0 on matched pairs.
    u_[start] += reach;
    for (int64_t i = 0; i < n_; ++i)
      if (row_seen_[i] && i != start) u_[i] += reach - dist_[col_of_row_[i]];
    for (int64_t j = 0; j < m_; ++j)
      if (col_done_[j]) v_[j] -= reach - dist_[j];

    // Flip the matching along the path, from the free column back to the new row.
    for (int64_t col = sink;;) {
      const int64_t i = pred_[col];
      row_of_col_[col] = i;
      std::swap(col_of_row_[i], col);
      if (i == start) break;
    }
  }

  const double* c_;
  int64_t n_, m_;
  std::vector<double> u_, v_, dist_;
  std::vector<int64_t> pred_, col_of_row_, row_of_col_;
  std::vector<bool> row_seen_, col_done_;
  std::vector<int64_t> todo_;
};

}  // namespace

Assignment linear_sum_assignment(const double* cost, int64_t num_rows, int64_t num_cols) {
  if (num_rows < 0 || num_cols < 0)
    fail("linear_sum_assignment: negative matrix size {} x {}", num_rows, num_cols);
  Assignment out;
  if (num_rows == 0 || num_cols == 0) return out;
  for (int64_t k = 0; k < num_rows * num_cols; ++k)
    if (std::isnan(cost[k]) || cost[k] == -kInf)
      fail("linear_sum_assignment: cost[{}][{}] is {} (costs must be numbers; +inf marks a forbidden pair)",
           k / num_cols, k % num_cols, cost[k]);

  // The solver wants at most as many rows as columns: a tall matrix is solved transposed.
  const bool transpose = num_rows > num_cols;
  std::vector<double> transposed;
  const double* c = cost;
  int64_t n = num_rows, m = num_cols;
  if (transpose) {
    transposed.resize(static_cast<size_t>(num_rows * num_cols));
    for (int64_t i = 0; i < num_rows; ++i)
      for (int64_t j = 0; j < num_cols; ++j) transposed[j * num_rows + i] = cost[i * num_cols + j];
    c = transposed.data();
    std::swap(n, m);
  }
  const std::vector<int64_t> match = WideSolver(c, n, m).solve();

  out.rows.resize(static_cast<size_t>(n));
  out.cols.resize(static_cast<size_t>(n));
  if (!transpose) {
    for (int64_t i = 0; i < n; ++i) {
      out.rows[i] = i;
      out.cols[i] = match[i];
    }
  } else {
    // match[j] is the original row of original column j; report the pairs by increasing original row.
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return match[a] < match[b]; });
    for (int64_t k = 0; k < n; ++k) {
      out.rows[k] = match[order[k]];
      out.cols[k] = order[k];
    }
  }
  for (size_t k = 0; k < out.rows.size(); ++k) out.cost += cost[out.rows[k] * num_cols + out.cols[k]];
  return out;
}

Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t num_rows, int64_t num_cols) {
  if (num_rows < 0 || num_cols < 0 || static_cast<int64_t>(cost.size()) != num_rows * num_cols)
    fail("linear_sum_assignment: {} costs given for a {} x {} matrix", cost.size(), num_rows, num_cols);
  return linear_sum_assignment(cost.data(), num_rows, num_cols);
}

}  // namespace em::models
