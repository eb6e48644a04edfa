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
  int64_t batch_size = 0;  // images per forward pass; 0 = the algorithm's per_device_eval_batch_size (16, or 4)
  int num_workers = 2;
};

// The algorithm comes from the model folder's config.json (model_type).
std::unique_ptr<Task> make_eval_task(const EvalTaskOptions& options);
// options.batch_size, or (0) the algorithm's per_device_eval_batch_size: 16 for classification, 4 for segmentation
// and detection, as em-train evaluates.
int64_t eval_batch_size(const EvalTaskOptions& options);

}  // namespace em::train
