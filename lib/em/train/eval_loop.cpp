#include "em/train/eval_loop.hpp"

#include "em/core/chunks.hpp"
#include "em/core/progress.hpp"
#include "em/tensor/loader.hpp"

#include <algorithm>
#include <limits>

namespace em::train {

void run_eval_loop(const EvalLoopOptions& options,
                   const std::function<tensor::Batch(int64_t begin, int64_t end)>& make_batch,
                   const std::function<void(const tensor::Batch&)>& consume) {
  const auto [first, last] = options.group ? eval_shard(options.num_items, options.group->rank(), options.group->size())
                                            : std::pair<int64_t, int64_t>{0, options.num_items};
  const auto n = static_cast<size_t>(last - first), size = static_cast<size_t>(options.batch_size);
  torch::NoGradGuard no_grad;
  tensor::PrefetchLoader loader(
      num_chunks(n, size),
      [&, first = first](size_t b) {
        const ChunkRange range = chunk_range(n, size, b);
        return make_batch(first + static_cast<int64_t>(range.begin), first + static_cast<int64_t>(range.end));
      },
      options.num_workers, std::max(2, options.num_workers * 2));
  Progress progress("eval " + options.split, static_cast<int64_t>(n), "image");
  int64_t done = 0;
  while (auto batch = loader.next()) {
    consume(*batch);
    done += batch->size();
    if (options.show_progress) progress.update(done);
  }
  if (options.show_progress) progress.finish();
}

std::pair<int64_t, int64_t> eval_shard(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;  // the first `extra` ranks take one more
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

void sum_over_ranks(dist::Group* group, std::vector<int64_t>& counts) {
  if (group == nullptr || group->single()) return;
  torch::Tensor t = torch::tensor(counts, torch::kInt64).to(group->device());
  group->all_reduce_sum(t);
  t = t.cpu();
  std::copy(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel(), counts.begin());
}

double EvalLossMean::mean(dist::Group* group) const {
  double sum = sum_, images = static_cast<double>(images_);
  if (group != nullptr && !group->single()) {
    torch::Tensor t = torch::tensor({sum, images}, torch::kFloat64).to(group->device());
    group->all_reduce_sum(t);
    t = t.cpu();
    sum = t[0].item<double>();
    images = t[1].item<double>();
  }
  return images > 0 ? sum / images : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace em::train
