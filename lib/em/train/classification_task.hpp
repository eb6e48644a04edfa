// Image classification (ResNet) as a trainer Task: the folder-per-label dataset, preprocessing + flip augmentation,
// cross-entropy, and evaluation with scikit-learn-equal metrics. Also used by em-eval on a saved model folder.
#pragma once
#include <memory>
#include <string>

#include "em/data/classification_dataset.hpp"
#include "em/models/classifier.hpp"
#include "em/train/task.hpp"
#include "em/train/trainer.hpp"

namespace em::train {

class ClassificationTask : public Task {
 public:
  // Training: dataset from opts.data_dir; model from opts.model_config (default resnet-50), weights from opts.init.
  explicit ClassificationTask(const TrainOptions& opts);
  // Evaluation of a saved model folder on `data_dir`'s splits.
  ClassificationTask(const std::string& model_dir, const std::string& data_dir, int64_t eval_batch_size,
                     int num_workers);

  torch::nn::Module& model() override { return *classifier_.model; }
  int64_t train_size() const override { return static_cast<int64_t>(dataset_.train.size()); }
  tensor::Batch train_batch(const std::vector<int64_t>& indices, int64_t epoch) override;
  LossOutput loss(const tensor::Batch& batch) override;
  EvalResult evaluate(const EvalOptions& options) override;
  std::vector<std::string> metric_names() const override;
  std::vector<ParamGroup> param_groups(double weight_decay) override;
  void save_model(const std::filesystem::path& dir) override;
  Algo algo() const override { return Algo::classification; }
  const std::vector<std::string>& labels() const override { return classifier_.config.id2label; }
  double chance_level() const override { return 1.0 / static_cast<double>(classifier_.config.id2label.size()); }

 private:
  const std::vector<data::LabeledImage>& split(const std::string& name) const;
  tensor::Batch eval_batch(const std::vector<data::LabeledImage>& samples, int64_t begin, int64_t end) const;

  data::ClassificationDataset dataset_;
  models::Classifier classifier_;
  std::vector<int64_t> dataset_to_model_label_;  // dataset label index -> model label id
  uint64_t seed_ = 42;
  int64_t eval_batch_size_ = 16;
  int num_workers_ = 2;
};

}  // namespace em::train
