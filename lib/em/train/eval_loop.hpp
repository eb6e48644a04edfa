// The evaluation pass every Task runs, written once: a split's items in batches, built ahead on loader threads,
// consumed in order on this thread without autograd, with an "eval SPLIT" progress line. A Task supplies only how
// to build a batch of items [begin, end) and what to do with it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "em/dist/group.hpp"
#include "em/tensor/batch.hpp"

namespace em::train {

struct EvalLoopOptions {
  int64_t num_items = 0;
  int64_t batch_size = 16;
  int num_workers = 2;       // loader threads (0 = build each batch on this thread)
  std::string split;         // for the progress line
  bool show_progress = true;
  // Data-parallel evaluation: this rank takes its contiguous share of the items (rank order, so results gathered in
  // rank order are in item order); nullptr or a group of one = every item.
  dist::Group* group = nullptr;
};

// make_batch(begin, end) runs on loader threads (decode, preprocess, plain tensors only); consume(batch) runs here,
// under torch::NoGradGuard, in item order. An exception from either ends the pass and propagates.
void run_eval_loop(const EvalLoopOptions& options,
                   const std::function<tensor::Batch(int64_t begin, int64_t end)>& make_batch,
                   const std::function<void(const tensor::Batch&)>& consume);

// The items [begin, end) of `n` that rank `rank` of `world` evaluates.
std::pair<int64_t, int64_t> eval_shard(int64_t n, int rank, int world);

// Counts summed over the ranks of `group` (exact: int64), in place; nothing to do for nullptr or one process.
void sum_over_ranks(dist::Group* group, std::vector<int64_t>& counts);

// HF Trainer's eval_loss: each batch's mean loss counted once per image of the batch (its evaluation_loop repeats it
// batch-size times before the mean), over the whole split and every rank's share of it.
class EvalLossMean {
 public:
  void add(double batch_mean, int64_t images) {
    sum_ += batch_mean * static_cast<double>(images);
    images_ += images;
  }
  // Every rank calls it (an all-reduce); NaN when no batch had a loss.
  double mean(dist::Group* group) const;

 private:
  double sum_ = 0;
  int64_t images_ = 0;
};

}  // namespace em::train
