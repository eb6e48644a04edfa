#include "em/data/sampling.hpp"

#include <algorithm>
#include <numeric>

namespace em::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index));
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  if (bound <= 1) return 0;
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound: values below it would bias the modulo
  for (;;) {
    uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(sample_seed(seed, epoch, -1));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[i], order[uniform_below(rng, static_cast<uint64_t>(i) + 1)]);
  return order;
}

}  // namespace em::data
