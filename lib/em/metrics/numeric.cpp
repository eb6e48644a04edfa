#include "em/metrics/numeric.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace em::metrics {
namespace {
// numpy/core/src/umath/loops_utils.h.src, pairwise_sum_DOUBLE (PW_BLOCKSIZE 128), transcribed.
double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}
}  // namespace

double numpy_sum(const double* values, std::size_t n) {
  // NumPy's reduction hands the inner loop buffers of 8192 elements (NPY_BUFSIZE) and adds their pairwise sums in
  // turn (checked against numpy 1.24 on COCO's precision arrays, which run past that size).
  constexpr std::size_t kBuffer = 8192;
  double sum = 0.;
  for (std::size_t i = 0; i < n; i += kBuffer) sum += pairwise_sum(values + i, std::min(kBuffer, n - i));
  return sum;
}

double numpy_mean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  return numpy_sum(values) / static_cast<double>(values.size());
}

double numpy_nanmean(const std::vector<double>& values) {
  // np.nanmean: NaNs replaced by 0, summed over the whole array, divided by the count of non-NaN values.
  std::vector<double> replaced(values);
  std::size_t count = 0;
  for (double& v : replaced) {
    if (std::isnan(v))
      v = 0.;
    else
      ++count;
  }
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  return numpy_sum(replaced) / static_cast<double>(count);
}

}  // namespace em::metrics
