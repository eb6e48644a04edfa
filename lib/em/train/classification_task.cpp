#include "em/train/classification_task.hpp"
#include "em/train/init_model.hpp"
#include "em/data/sampling.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/core/log.hpp"
#include "em/data/transforms.hpp"
#include "em/metrics/classification.hpp"
#include "em/metrics/classification_io.hpp"
#include "em/train/eval_loop.hpp"
#include "em/models/model_folder.hpp"

#include <random>

namespace em::train {
namespace fs = std::filesystem;

namespace {

// The platform's default input_size (28) suits Fashion-MNIST, not photos: say so when the first training images are
// much larger (their headers only).
void warn_if_input_size_small(const std::vector<data::LabeledImage>& train, int64_t input_size) {
  int smallest_side = 0;
  std::string example;
  for (size_t i = 0; i < std::min<size_t>(train.size(), 8); ++i) {
    try {
      const io::ImageInfo info = io::image_info(io::read_file(train[i].path), train[i].path);
      const int side = std::min(info.width, info.height);
      if (smallest_side == 0 || side < smallest_side) smallest_side = side, example = train[i].path;
    } catch (const Error&) {
      // unreadable images are reported (and skipped) where they are read
    }
  }
  if (smallest_side >= 4 * input_size)
    log::warn("input_size {} shrinks images at least {} pixels on a side (e.g. {}) to {}x{}; photos usually want "
              "--input_size 224 (docs/training.md)",
              input_size, smallest_side, example, input_size, input_size);
}

}  // namespace

ClassificationTask::ClassificationTask(const TrainOptions& opts)
    : dataset_(data::ClassificationDataset::scan(opts.data_dir)),
      seed_(static_cast<uint64_t>(opts.hp.seed)),
      eval_batch_size_(opts.hp.per_device_eval_batch_size),
      num_workers_(static_cast<int>(opts.hp.num_workers)) {
  if (dataset_.train.empty()) fail("{}/train: no images to train on", opts.data_dir);
  torch::manual_seed(opts.hp.seed);
  const std::string architecture = training_model_config(opts.model_config, opts.init, Algo::classification);
  classifier_ = models::Classifier::create(architecture, dataset_.labels, opts.hp.input_size);
  if (!opts.init.empty()) {
    models::InitOptions io_opts;
    io_opts.base_model_prefix = models::Classifier::kBaseModelPrefix;
    // ResNetForImageClassification's head: classifier.1 (a Linear after the flatten).
    init_model(*classifier_.model, opts.init, dataset_.labels, io_opts,
               {{"classifier."}, {"classifier.1.weight", "classifier.1.bias"}}, opts.init_partial);
  }
  // Training stays NCHW: measured on ResNet-50 (input 28, batch 16, 2 threads) channels-last trains ~10% slower, as
  // LibTorch 1.13's mkldnn convolution backward reorders channels-last 3x3 weights on every step; at 112-224 the two
  // formats train alike. Inference (em-eval, em-predict, em-serve) does use channels-last, where it is faster.
  for (size_t i = 0; i < dataset_.labels.size(); ++i) dataset_to_model_label_.push_back(static_cast<int64_t>(i));
  warn_if_input_size_small(dataset_.train, opts.hp.input_size);
  log::info("classification: {} labels, {} train / {} validation images, {} at {}x{}", dataset_.labels.size(),
            dataset_.train.size(), dataset_.validation.size(),
            models::model_config_name(architecture, Algo::classification), opts.hp.input_size,
            opts.hp.input_size);
}

ClassificationTask::ClassificationTask(const std::string& model_dir, const std::string& data_dir,
                                       int64_t eval_batch_size, int num_workers)
    : dataset_(data::ClassificationDataset::scan(data_dir, /*require_validation=*/false)),
      classifier_(models::Classifier::load(model_dir)),
      eval_batch_size_(eval_batch_size),
      num_workers_(num_workers) {
  // The dataset's folder names are matched to the model's labels by name.
  const auto& model_labels = classifier_.config.id2label;
  for (const auto& name : dataset_.labels) {
    auto it = std::find(model_labels.begin(), model_labels.end(), name);
    if (it == model_labels.end())
      fail("{}: label '{}' is unknown to the model {} (its labels: {})", data_dir, name, model_dir,
           fmt::format("{}", fmt::join(model_labels, ", ")));
    dataset_to_model_label_.push_back(it - model_labels.begin());
  }
  classifier_.use_channels_last();
}

const std::vector<data::LabeledImage>& ClassificationTask::split(const std::string& name) const {
  return dataset_.split(name);
}

tensor::Batch ClassificationTask::train_batch(const std::vector<int64_t>& indices, int64_t epoch) {
  tensor::Batch batch;
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t index : indices) {
    const auto& sample = dataset_.train[static_cast<size_t>(index)];
    io::Image image;
    try {
      image = io::read_image(sample.path, 3);
    } catch (const Error& e) {
      log::warn("skipping {}", e.what());
      ++batch.skipped;
      continue;
    }
    // Augmentation: a horizontal flip with probability 1/2, decided by (seed, epoch, index) alone.
    if (data::sample_seed(seed_, epoch, index) & 1) image = data::horizontal_flip(image);
    images.push_back(classifier_.preprocess(image));
    labels.push_back(dataset_to_model_label_[static_cast<size_t>(sample.label)]);
    batch.indices.push_back(index);
  }
  if (images.empty()) return batch;
  batch.pixel_values = tensor::stack_tensors(images);
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

LossOutput ClassificationTask::loss(const tensor::Batch& batch) {
  if (batch.size() == 0) fail("a training batch has no readable image");
  torch::Tensor logits = classifier_.model->forward(classifier_.to_model_input(batch.pixel_values));
  return {torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), batch.labels), {}};
}

tensor::Batch ClassificationTask::eval_batch(const std::vector<data::LabeledImage>& samples, int64_t begin,
                                             int64_t end) const {
  tensor::Batch batch;
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t i = begin; i < end; ++i) {
    const auto& s = samples[static_cast<size_t>(i)];
    images.push_back(classifier_.preprocess(io::read_image(s.path, 3)));
    labels.push_back(dataset_to_model_label_[static_cast<size_t>(s.label)]);
    batch.indices.push_back(i);
  }
  batch.pixel_values = tensor::stack_tensors(images);
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

EvalResult ClassificationTask::evaluate(const EvalOptions& options) {
  const auto& samples = split(options.split);
  if (samples.empty()) fail("split '{}' has no images to evaluate", options.split);
  metrics::ClassificationAccumulator acc(classifier_.config.id2label);
  std::vector<metrics::ClassificationPrediction> predictions;
  EvalLossMean loss;
  classifier_.model->eval();
  const EvalLoopOptions loop{static_cast<int64_t>(samples.size()), eval_batch_size_, num_workers_, options.split,
                             options.show_progress, options.group};
  run_eval_loop(
      loop, [&](int64_t begin, int64_t end) { return eval_batch(samples, begin, end); },
      [&](const tensor::Batch& batch) {
        const torch::Tensor logits = classifier_.logits(batch.pixel_values, options.bf16);
        // HF's ResNetForImageClassification loss on the batch: cross-entropy, mean over its images.
        if (options.compute_loss)
          loss.add(torch::nn::functional::cross_entropy(logits, batch.labels).item<double>(), batch.size());
        torch::Tensor probs = torch::softmax(logits, 1);
        auto [score, predicted] = probs.max(1);
        auto s = score.accessor<float, 1>();
        auto p = predicted.accessor<int64_t, 1>();
        auto t = batch.labels.accessor<int64_t, 1>();
        for (int64_t i = 0; i < batch.size(); ++i) {
          acc.add(t[i], p[i]);
          if (options.predictions_path.empty()) continue;
          const auto& sample = samples[static_cast<size_t>(batch.indices[static_cast<size_t>(i)])];
          metrics::ClassificationPrediction pred;
          pred.image =
              metrics::normalize_image_path(fs::relative(sample.path, fs::path(dataset_.dir)).generic_string());
          pred.label = classifier_.config.id2label[static_cast<size_t>(p[i])];
          pred.score = s[i];
          pred.label_id = p[i];
          predictions.push_back(std::move(pred));
        }
      });
  if (!options.predictions_path.empty()) metrics::write_predictions_jsonl(options.predictions_path, predictions);
  std::vector<int64_t> counts = acc.counts();
  sum_over_ranks(options.group, counts);
  acc.set_counts(counts);

  metrics::ClassificationMetrics m = acc.compute();
  EvalResult result;
  result.metrics = m.to_json();
  result.scalars = {{"accuracy", m.accuracy}, {"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}};
  if (options.compute_loss) result.set_loss(loss.mean(options.group));
  return result;
}

std::vector<std::string> ClassificationTask::metric_names() const {
  return {"accuracy", "precision", "recall", "f1", "loss"};
}

std::vector<ParamGroup> ClassificationTask::param_groups(double weight_decay) {
  // HF Trainer's grouping: no weight decay on biases and normalisation weights.
  ParamGroup decay, no_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& item : classifier_.model->named_parameters()) {
    bool is_norm_or_bias = item.key().find("normalization") != std::string::npos ||
                           (item.key().size() >= 4 && item.key().compare(item.key().size() - 4, 4, "bias") == 0);
    ParamGroup& g = is_norm_or_bias ? no_decay : decay;
    g.names.push_back(item.key());
    g.params.push_back(item.value());
  }
  decay.weight_decay = weight_decay;
  return {decay, no_decay};
}

void ClassificationTask::save_model(const fs::path& dir) { classifier_.save(dir); }

}  // namespace em::train
