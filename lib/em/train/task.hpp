// What the trainer and em-eval need from one algorithm: its model, training batches, loss, evaluation and how it
// saves itself. One implementation per algorithm (classification_task.hpp, ...); the loop in trainer.cpp is shared.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/core/algo.hpp"
#include "em/dist/group.hpp"
#include "em/tensor/batch.hpp"
#include "em/io/json.hpp"
#include "em/metrics/coco.hpp"
#include "em/metrics/segmentation.hpp"
#include "em/train/optimizer.hpp"

namespace em::train {

struct LossOutput {
  torch::Tensor loss;                    // scalar, what is back-propagated
  std::map<std::string, double> terms;   // extra terms logged as train/<name> (detection: loss_ce, loss_bbox, ...)
};

struct EvalOptions {
  std::string split = "validation";
  std::string predictions_path;          // "" = none; else the predictions file/folder (format per algorithm)
  bool bf16 = false;
  bool show_progress = true;
  // Data-parallel evaluation (the trainer's): each rank scores its share of the split and the counts (or, for
  // detection, the detections) are combined over ranks, so every rank gets the metrics of the whole split.
  dist::Group* group = nullptr;
  // em-eval --plots: segmentation keeps the first plot_examples images of the split with their truth and predicted
  // label maps (EvalResult::examples); the other algorithms' pictures need only the metrics (and detection's COCO
  // accumulation, always kept).
  int64_t plot_examples = 0;
  // The trainer's evaluations: also the model's loss on the split (EvalResult::set_loss), as HF Trainer's eval_loss.
  bool compute_loss = false;
};

struct EvalResult {
  io::Json metrics;                          // the full metrics JSON em-eval prints
  std::map<std::string, double> scalars;     // logged as eval/<name> (TensorBoard) and eval_<name> (metrics.jsonl)
  std::vector<metrics::SegmentationExample> examples;   // segmentation with EvalOptions::plot_examples > 0
  std::shared_ptr<const metrics::CocoEvalResult> coco;  // detection: the accumulation (precision[T][R][K][A][M])

  // EvalOptions::compute_loss: the loss as "loss" in both (eval_loss in metrics.jsonl and all_results.json, eval/loss
  // in TensorBoard, "loss" in eval_results.json).
  void set_loss(double loss) {
    scalars["loss"] = loss;
    metrics["loss"] = loss;
  }
};

class Task {
 public:
  virtual ~Task() = default;
  virtual torch::nn::Module& model() = 0;
  virtual int64_t train_size() const = 0;
  // The training batch for these dataset indices; augmentation is seeded per sample from (seed, epoch, index).
  virtual tensor::Batch train_batch(const std::vector<int64_t>& indices, int64_t epoch) = 0;
  virtual LossOutput loss(const tensor::Batch& batch) = 0;
  virtual EvalResult evaluate(const EvalOptions& options) = 0;
  // Parameter groups for AdamW (detection gives its backbone a smaller learning rate).
  virtual std::vector<ParamGroup> param_groups(double weight_decay) = 0;
  // Writes a loadable model folder: config.json, model.safetensors, preprocessor_config.json.
  virtual void save_model(const std::filesystem::path& dir) = 0;
  virtual Algo algo() const = 0;
  // The model's id2label in id order.
  virtual const std::vector<std::string>& labels() const = 0;
  // The algorithm's main metric (greater is better): the row in core/algo.cpp; metric_for_best_model's default.
  std::string main_metric() const { return algo_info(algo()).main_metric; }
  // The keys of EvalResult::scalars that evaluate() logs with compute_loss ("loss" among them), so that
  // metric_for_best_model is checked before training starts; empty: not known before the first evaluation.
  virtual std::vector<std::string> metric_names() const { return {}; }
  // The main metric of a model that guesses (classification: 1 / number of labels); <= 0 when there is none.
  virtual double chance_level() const { return 0; }
  // Data-parallel training: the processes' group, for a loss that normalises over all of them (DETR's box count).
  virtual void set_group(dist::Group* group) {}
  // Whether loss() already normalises over the global batch (then the trainer does not weight it by this rank's
  // share of the batch).
  virtual bool loss_normalised_over_ranks() const { return false; }
};

}  // namespace em::train
