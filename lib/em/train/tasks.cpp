#include "em/train/tasks.hpp"

#include "em/train/hyperparameters.hpp"

#include "em/data/layout.hpp"
#include "em/models/model_folder.hpp"
#include "em/train/classification_task.hpp"
#include "em/train/detection_task.hpp"
#include "em/train/segmentation_task.hpp"

namespace em::train {
namespace {

template <typename T>
std::unique_ptr<Task> for_training(const TrainOptions& options) {
  return std::make_unique<T>(options);
}
template <typename T>
std::unique_ptr<Task> for_evaluation(const EvalTaskOptions& o) {
  return std::make_unique<T>(o.model_dir, o.data_dir, o.batch_size, o.num_workers);
}

// Each algorithm's Task, by the Algo of core/algo.cpp's table.
struct TaskRow {
  Algo algo;
  std::unique_ptr<Task> (*training)(const TrainOptions&);
  std::unique_ptr<Task> (*evaluation)(const EvalTaskOptions&);
};
constexpr TaskRow kTasks[] = {
    {Algo::classification, for_training<ClassificationTask>, for_evaluation<ClassificationTask>},
    {Algo::segmentation, for_training<SegmentationTask>, for_evaluation<SegmentationTask>},
    {Algo::detection, for_training<DetectionTask>, for_evaluation<DetectionTask>},
};
static_assert(one_row_per_algo(kTasks), "kTasks: one Task per algorithm, in enum order");

}  // namespace

std::unique_ptr<Task> make_training_task(const TrainOptions& options) {
  data::require_layout(options.hp.algo, options.data_dir);
  return kTasks[index_of(options.hp.algo)].training(options);
}

std::unique_ptr<Task> make_eval_task(const EvalTaskOptions& options) {
  const Algo algo = models::algo_of_model_dir(options.model_dir);
  data::require_layout(algo, options.data_dir);
  EvalTaskOptions resolved = options;
  resolved.batch_size = eval_batch_size(options);
  return kTasks[index_of(algo)].evaluation(resolved);
}

int64_t eval_batch_size(const EvalTaskOptions& options) {
  if (options.batch_size > 0) return options.batch_size;
  return Hyperparameters::defaults(models::algo_of_model_dir(options.model_dir)).per_device_eval_batch_size;
}

}  // namespace em::train
