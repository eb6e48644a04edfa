#include "em/train/eval_loop.hpp"

#include "em/core/chunks.hpp"
#include "em/core/progress.hpp"
#include "em/tensor/loader.hpp"

#include <algorithm>

namespace em::train {

void run_eval_loop(const EvalLoopOptions& options,
                   const std::function<tensor::Batch(int64_t begin, int64_t end)>& make_batch,
                   const std::function<void(const tensor::Batch&)>& consume) {
  const auto n = static_cast<size_t>(options.num_items), size = static_cast<size_t>(options.batch_size);
  torch::NoGradGuard no_grad;
  tensor::PrefetchLoader loader(
      num_chunks(n, size),
      [&](size_t b) {
        const ChunkRange range = chunk_range(n, size, b);
        return make_batch(static_cast<int64_t>(range.begin), static_cast<int64_t>(range.end));
      },
      options.num_workers, std::max(2, options.num_workers * 2));
  Progress progress("eval " + options.split, options.num_items, "image");
  int64_t done = 0;
  while (auto batch = loader.next()) {
    consume(*batch);
    done += batch->size();
    if (options.show_progress) progress.update(done);
  }
  if (options.show_progress) progress.finish();
}

}  // namespace em::train
