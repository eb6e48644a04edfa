// The evaluation pass every Task runs, written once: a split's items in batches, built ahead on loader threads,
// consumed in order on this thread without autograd, with an "eval SPLIT" progress line. A Task supplies only how
// to build a batch of items [begin, end) and what to do with it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "em/tensor/batch.hpp"

namespace em::train {

struct EvalLoopOptions {
  int64_t num_items = 0;
  int64_t batch_size = 16;
  int num_workers = 2;       // loader threads (0 = build each batch on this thread)
  std::string split;         // for the progress line
  bool show_progress = true;
};

// make_batch(begin, end) runs on loader threads (decode, preprocess, plain tensors only); consume(batch) runs here,
// under torch::NoGradGuard, in item order. An exception from either ends the pass and propagates.
void run_eval_loop(const EvalLoopOptions& options,
                   const std::function<tensor::Batch(int64_t begin, int64_t end)>& make_batch,
                   const std::function<void(const tensor::Batch&)>& consume);

}  // namespace em::train
