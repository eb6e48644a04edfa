// Floating-point helpers that reproduce NumPy's reductions bit for bit, so our metrics equal the reference
// implementations (scikit-learn, HF evaluate, both on NumPy) exactly, not just to a tolerance.
#pragma once
#include <cstddef>
#include <vector>

namespace em::metrics {

// np.sum of a contiguous float64 array: NumPy's pairwise summation (8 accumulators per block of <= 128 values,
// halves above that) over each 8192-value buffer of its reduction loop, the buffers' sums added in turn. Differs
// from a plain left-to-right loop in the last bits for n >= 8.
double numpy_sum(const double* values, std::size_t n);
inline double numpy_sum(const std::vector<double>& values) { return numpy_sum(values.data(), values.size()); }

// np.mean (sum / n) and np.nanmean (sum of the non-NaN values / their count; NaN when there is none).
double numpy_mean(const std::vector<double>& values);
double numpy_nanmean(const std::vector<double>& values);

}  // namespace em::metrics
