// Object detection (DETR) as a trainer Task: the COCO layout, DETR's preprocessing and box-consistent augmentation,
// padded batches with a pixel mask, the set-prediction loss with auxiliary losses, the 0.1x backbone learning rate,
// and evaluation with pycocotools-equal COCO metrics. Also used by em-eval on a saved model folder.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "em/data/coco_dataset.hpp"
#include "em/data/detection_transforms.hpp"
#include "em/metrics/coco.hpp"
#include "em/models/detector.hpp"
#include "em/train/task.hpp"
#include "em/train/trainer.hpp"

namespace em::train {

// What one evaluation pass produced: COCO results (dataset image and category ids, original pixels) for the split.
struct DetectionEvalOutput {
  metrics::CocoResults results;
  metrics::CocoEvalResult coco;
};

class DetectionTask : public Task {
 public:
  // Training: dataset from opts.data_dir; model from opts.model_config (default detr-resnet-50), weights from opts.init.
  explicit DetectionTask(const TrainOptions& opts);
  // Evaluation of a saved model folder on `data_dir`'s splits (labels matched to the dataset's categories by name).
  DetectionTask(const std::string& model_dir, const std::string& data_dir, int64_t eval_batch_size, int num_workers);

  torch::nn::Module& model() override { return *detector_.model; }
  int64_t train_size() const override { return static_cast<int64_t>(dataset_.train.images.size()); }
  tensor::Batch train_batch(const std::vector<int64_t>& indices, int64_t epoch) override;
  LossOutput loss(const tensor::Batch& batch) override;
  void set_group(dist::Group* group) override { group_ = group; }
  bool loss_normalised_over_ranks() const override { return group_ != nullptr && !group_->single(); }
  // Every query of every image (threshold 0, as DETR's own evaluation), scored with COCO box metrics against the
  // split as read for the batches (one parse of its annotation file). --predictions writes the COCO results list.
  EvalResult evaluate(const EvalOptions& options) override;
  std::vector<std::string> metric_names() const override;
  // AdamW groups: the backbone's trainable parameters (layer2..4) at 0.1x the learning rate, the rest at 1x; weight
  // decay on every parameter (the original DETR's param_dicts).
  std::vector<ParamGroup> param_groups(double weight_decay) override;
  void save_model(const std::filesystem::path& dir) override;
  Algo algo() const override { return Algo::detection; }
  const std::vector<std::string>& labels() const override { return detector_.config.id2label; }

  // The learning-rate scale of the backbone group.
  static constexpr double kBackboneLrScale = 0.1;

 private:
  dist::Group* group_ = nullptr;
  const data::CocoSplit& split(const std::string& name);
  // Non-crowd boxes of one image as targets (the model's label indices: `label_of` a category id, -1 drops the box),
  // clipped to width x height; degenerate ones dropped.
  data::BoxTargets targets_of(const data::CocoImageRecord& image, int width, int height,
                              const std::map<int64_t, int64_t>& label_of) const;
  // Images [begin, end) of the split, preprocessed and padded, with their original and input sizes; with
  // `label_of` (a category id -> the model's label), also their boxes as the loss takes them (batch.boxes).
  tensor::Batch eval_batch(const data::CocoSplit& split, int64_t begin, int64_t end,
                           const std::map<int64_t, int64_t>* label_of) const;

  data::DetectionDataset dataset_;
  std::map<std::string, data::CocoSplit> eval_splits_;          // splits read for em-eval (model-folder mode)
  models::Detector detector_;
  std::vector<int64_t> category_of_label_;  // training: label -> train's category id (labels are train's categories)
  std::map<int64_t, int64_t> label_of_category_;  // training: the inverse
  data::DetectionAugmentation augmentation_ = data::DetectionAugmentation::detr;
  int64_t image_size_ = 800;
  uint64_t seed_ = 42;
  int64_t eval_batch_size_ = 4;
  int num_workers_ = 2;
  bool from_model_dir_ = false;
  std::string data_dir_;
};

}  // namespace em::train
