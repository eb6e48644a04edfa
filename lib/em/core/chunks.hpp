// "Split n items into batches of at most `size`": the one loop behind every batched pass (prediction, evaluation,
// the server's forward passes).
#pragma once
#include <algorithm>
#include <cstddef>

namespace em {

// How many chunks of at most `size` (>= 1) items cover n items.
constexpr std::size_t num_chunks(std::size_t n, std::size_t size) { return (n + size - 1) / size; }

// fn(begin, end) for the consecutive ranges [begin, end) of at most `size` (>= 1) items that cover [0, n), in order.
template <typename Fn>
void for_each_chunk(std::size_t n, std::size_t size, Fn&& fn) {
  for (std::size_t begin = 0; begin < n; begin += size) fn(begin, std::min(n, begin + size));
}

// The range of chunk `index`: [index * size, min(n, (index + 1) * size)).
struct ChunkRange {
  std::size_t begin, end;
};
constexpr ChunkRange chunk_range(std::size_t n, std::size_t size, std::size_t index) {
  return {index * size, std::min(n, (index + 1) * size)};
}

}  // namespace em
