// Semantic segmentation (SegFormer) as a trainer Task: the {split}.json + id2label dataset, augmentation applied
// alike to image and label map, HF's upsampled cross-entropy (ignore 255), and streaming evaluation with HF
// evaluate's mean_iou at the original label size. Also used by em-eval on a saved model folder.
#pragma once
#include <string>
#include <vector>

#include "em/data/segmentation_dataset.hpp"
#include "em/data/segmentation_transforms.hpp"
#include "em/models/segmenter.hpp"
#include "em/train/task.hpp"
#include "em/train/trainer.hpp"

namespace em::train {

class SegmentationTask : public Task {
 public:
  // Training: dataset from opts.data_dir; architecture from opts.model_config (default mit-b3, or the config.json of
  // an --init folder when no --model_config is given), weights from opts.init; inputs opts.hp.image_size square.
  explicit SegmentationTask(const TrainOptions& opts);
  // Evaluation of a saved model folder on `data_dir`'s splits (the dataset's id2label must name the model's ids).
  SegmentationTask(const std::string& model_dir, const std::string& data_dir, int64_t eval_batch_size,
                   int num_workers);

  torch::nn::Module& model() override { return *segmenter_.model; }
  int64_t train_size() const override { return static_cast<int64_t>(dataset_.train.size()); }
  tensor::Batch train_batch(const std::vector<int64_t>& indices, int64_t epoch) override;
  LossOutput loss(const tensor::Batch& batch) override;
  // Streams per-image pixel counts (memory does not grow with the split). options.predictions_path: a folder that
  // receives one predicted label PNG per image under its seg_map path (what em-metrics --pred reads).
  EvalResult evaluate(const EvalOptions& options) override;
  // Per-class IoU (iou/<label>) is left out of an evaluation where the class is absent from prediction and truth.
  std::vector<std::string> metric_names() const override;
  std::vector<ParamGroup> param_groups(double weight_decay) override;
  void save_model(const std::filesystem::path& dir) override;
  Algo algo() const override { return Algo::segmentation; }
  const std::vector<std::string>& labels() const override { return segmenter_.config.id2label; }

 private:
  void check_predictions_dir(const std::string& predictions_path, const std::string& split) const;
  tensor::Batch eval_batch(const std::vector<data::SegmentationEntry>& samples, int64_t begin, int64_t end) const;

  data::SegmentationDataset dataset_;
  models::Segmenter segmenter_;
  data::SegmentationAugmentOptions augment_;
  uint64_t seed_ = 42;
  int64_t eval_batch_size_ = 4;
  int num_workers_ = 2;
};

}  // namespace em::train
