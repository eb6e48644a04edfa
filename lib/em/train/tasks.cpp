#include "em/train/tasks.hpp"

#include "em/core/error.hpp"
#include "em/models/model_kind.hpp"
#include "em/train/classification_task.hpp"
#include "em/train/segmentation_task.hpp"
#include "em/train/detection_task.hpp"

#include <filesystem>

namespace em::train {

std::unique_ptr<Task> make_training_task(const TrainOptions& opts) {
  switch (opts.hp.algo) {
    case Algo::classification: return std::make_unique<ClassificationTask>(opts);
    case Algo::segmentation: return std::make_unique<SegmentationTask>(opts);
    case Algo::detection: return std::make_unique<DetectionTask>(opts);
  }
  usage_fail("--algo {}: unknown algorithm", algo_name(opts.hp.algo));
}

std::unique_ptr<Task> make_eval_task(const EvalTaskOptions& options) {
  Algo algo = models::algo_of_model_dir(options.model_dir);
  switch (algo) {
    case Algo::classification:
      return std::make_unique<ClassificationTask>(options.model_dir, options.data_dir, options.batch_size,
                                                  options.num_workers);
    case Algo::segmentation:
      return std::make_unique<SegmentationTask>(options.model_dir, options.data_dir, options.batch_size,
                                                options.num_workers);
    case Algo::detection:
      return std::make_unique<DetectionTask>(options.model_dir, options.data_dir, options.batch_size,
                                             options.num_workers);
  }
  fail("{}: unknown algorithm {}", options.model_dir, algo_name(algo));
}

}  // namespace em::train
