// Factories: the Task of an algorithm, for training (from options) and for evaluation (from a saved model folder).
#pragma once
#include <memory>
#include <string>

#include "em/train/task.hpp"
#include "em/train/trainer.hpp"

namespace em::train {

struct EvalTaskOptions {
  std::string model_dir;
  std::string data_dir;
  int64_t batch_size = 16;
  int num_workers = 2;
};

// The algorithm comes from the model folder's config.json (model_type).
std::unique_ptr<Task> make_eval_task(const EvalTaskOptions& options);

}  // namespace em::train
