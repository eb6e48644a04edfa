#include "em/train/segmentation_task.hpp"
#include "em/train/init_model.hpp"
#include "em/data/sampling.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/transforms.hpp"
#include "em/io/file.hpp"
#include "em/metrics/segmentation.hpp"
#include "em/tensor/segmentation_counts.hpp"
#include "em/models/model_folder.hpp"
#include "em/train/eval_loop.hpp"

#include <cmath>
#include <cstring>
#include <set>

#include <fmt/ranges.h>

namespace em::train {
namespace fs = std::filesystem;
namespace {

// A one-channel label map as an int64 [H, W] tensor (plain copy: loader workers must not start LibTorch threads).
torch::Tensor label_tensor(const io::Image& map) {
  torch::Tensor t = torch::empty({map.height, map.width}, torch::kInt64);
  int64_t* out = t.data_ptr<int64_t>();
  for (size_t i = 0; i < map.pixels.size(); ++i) out[i] = map.pixels[i];
  return t;
}

}  // namespace

SegmentationTask::SegmentationTask(const TrainOptions& opts)
    : dataset_(data::SegmentationDataset::scan(opts.data_dir)),
      seed_(static_cast<uint64_t>(opts.hp.seed)),
      eval_batch_size_(opts.hp.per_device_eval_batch_size),
      num_workers_(static_cast<int>(opts.hp.num_workers)) {
  torch::manual_seed(opts.hp.seed);
  // The architecture: --model_config, else --init's config.json (as HF's from_pretrained takes it), else mit-b3.
  const std::string architecture = training_model_config(opts.model_config, opts.init, Algo::segmentation);
  segmenter_ = models::Segmenter::create(models::Segmenter::resolve_config(architecture), dataset_.labels,
                                         opts.hp.image_size);
  if (!opts.init.empty()) {
    models::InitOptions init;
    init.base_model_prefix = models::Segmenter::kBaseModelPrefix;
    // The all-MLP decode head is the task head (a SegformerModel / mit-bN encoder checkpoint has none); its last
    // convolution has one output channel per label.
    init_model(*segmenter_.model, opts.init, dataset_.labels, init,
               {{"decode_head."}, {"decode_head.classifier.weight", "decode_head.classifier.bias"}},
               opts.init_partial);
    // The run's processor is em-train's own (its labels are the dataset's ids), never --init's: say so when --init's
    // would have reduced the labels (ADE20k-style checkpoints). Read leniently: that file is not used otherwise.
    const fs::path processor = fs::path(opts.init) / "preprocessor_config.json";
    std::error_code ec;
    if (fs::is_regular_file(processor, ec)) {
      const auto j = io::try_parse_json(io::read_file(processor.string()));
      auto says = [&](const char* key) {
        const auto it = j->find(key);
        return it != j->end() && it->is_boolean() && it->get<bool>();
      };
      if (j && j->is_object() && (says("do_reduce_labels") || says("reduce_labels")))
        log::info("--init {}: its processor says do_reduce_labels; this run's labels are the dataset's ids, so its "
                  "preprocessor_config.json says do_reduce_labels false",
                  opts.init);
    }
  }
  segmenter_.use_channels_last();
  augment_.crop_size = static_cast<int>(opts.hp.image_size);
  log::info("segmentation: {} labels, {} train / {} validation images, {} at {}x{}", dataset_.labels.size(),
            dataset_.train.size(), dataset_.validation.size(),
            models::model_config_name(architecture, Algo::segmentation), opts.hp.image_size, opts.hp.image_size);
}

SegmentationTask::SegmentationTask(const std::string& model_dir, const std::string& data_dir, int64_t eval_batch_size,
                                   int num_workers)
    : dataset_(data::SegmentationDataset::scan(data_dir, /*require_validation=*/false)),
      segmenter_(models::Segmenter::load(model_dir)),
      eval_batch_size_(eval_batch_size),
      num_workers_(num_workers) {
  // Label maps hold ids: the dataset's ids must mean what the model's ids mean.
  const auto& model_labels = segmenter_.config.id2label;
  auto names_model_ids_from = [&](size_t first) {
    return dataset_.labels.size() - first <= model_labels.size() &&
           std::equal(dataset_.labels.begin() + static_cast<std::ptrdiff_t>(first), dataset_.labels.end(),
                      model_labels.begin());
  };
  // A model whose processor reduces labels (ADE20k-style) reads map value i + 1 as its id i and ignores 0: the
  // dataset's id2label may name the model's ids (HF's datasets do) or the map values (0 = background, then the model's).
  const bool reduce = segmenter_.preprocessor.reduce_labels();
  bool same = names_model_ids_from(0) || (reduce && !dataset_.labels.empty() && names_model_ids_from(1));
  if (reduce)
    log::info("{}: the processor says do_reduce_labels: label maps are reduced as HF does (0 -> 255, ignored; every "
              "other value - 1) before the loss and the metrics",
              model_dir);
  if (!same)
    fail("{}: the dataset's id2label ({}) does not match the model {}'s ids ({}): label maps hold ids, so id i must "
         "name the same class in both",
         data_dir, fmt::format("{}", fmt::join(dataset_.labels, ", ")), model_dir,
         fmt::format("{}", fmt::join(model_labels, ", ")));
  segmenter_.use_channels_last();
}

tensor::Batch SegmentationTask::train_batch(const std::vector<int64_t>& indices, int64_t epoch) {
  tensor::Batch batch;
  std::vector<torch::Tensor> images, labels;
  for (int64_t index : indices) {
    const auto& entry = dataset_.train[static_cast<size_t>(index)];
    data::SegmentationSample sample;
    try {
      sample = data::read_segmentation_sample(entry, static_cast<int64_t>(dataset_.labels.size()));
    } catch (const Error& e) {
      log::warn("skipping {}", e.what());
      ++batch.skipped;
      continue;
    }
    // One draw per (seed, epoch, index): the same crop, scale and flip on any worker and after a resume.
    const auto draw = data::draw_segmentation_augment(data::sample_seed(seed_, epoch, index), augment_);
    data::SegmentationSample augmented = data::apply_segmentation_augment(sample, draw, augment_);
    images.push_back(segmenter_.preprocess(augmented.image));
    labels.push_back(label_tensor(augmented.label_map));
    batch.indices.push_back(index);
  }
  if (images.empty()) return batch;
  batch.pixel_values = tensor::stack_tensors(images);
  batch.labels = tensor::stack_tensors(labels);
  return batch;
}

LossOutput SegmentationTask::loss(const tensor::Batch& batch) {
  if (batch.size() == 0) fail("a training batch has no readable image");
  torch::Tensor logits = segmenter_.model->forward(segmenter_.to_model_input(batch.pixel_values));
  return {models::segmentation_loss(logits, batch.labels, data::kIgnoreLabel), {}};
}

void SegmentationTask::check_predictions_dir(const std::string& predictions_path, const std::string& split) const {
  if (segmenter_.config.num_labels() > 255)
    fail("--predictions: the model has {} labels; 8-bit label PNGs hold the ids 0..254",
         segmenter_.config.num_labels());
  std::error_code ec;
  const fs::path split_dir = fs::path(dataset_.dir) / split;
  if (fs::weakly_canonical(predictions_path, ec) == fs::weakly_canonical(split_dir, ec))
    usage_fail("--predictions {}: this is the evaluated split's folder; its seg maps would be overwritten",
               predictions_path);
}

namespace {

// An evaluated sample: the dataset's ids as they are, or (the model's processor says do_reduce_labels) map values
// 0..num_labels reduced to the model's ids as HF does.
data::SegmentationSample read_eval_sample(const data::SegmentationEntry& entry, const models::Segmenter& segmenter,
                                          const data::SegmentationDataset& dataset) {
  if (segmenter.preprocessor.reduce_labels())
    return data::read_segmentation_sample(entry, segmenter.config.num_labels(), /*reduce_labels=*/true);
  return data::read_segmentation_sample(entry, static_cast<int64_t>(dataset.labels.size()));
}

}  // namespace

// Each batch carries its images at the model's input size and their label maps at the original size.
tensor::Batch SegmentationTask::eval_batch(const std::vector<data::SegmentationEntry>& samples, int64_t begin,
                                           int64_t end) const {
  tensor::Batch batch;
  std::vector<torch::Tensor> images;
  for (int64_t i = begin; i < end; ++i) {
    data::SegmentationSample s = read_eval_sample(samples[static_cast<size_t>(i)], segmenter_, dataset_);
    images.push_back(segmenter_.preprocess(s.image));
    batch.label_maps.push_back(label_tensor(s.label_map));
    batch.indices.push_back(i);
  }
  batch.pixel_values = tensor::stack_tensors(images);
  return batch;
}

EvalResult SegmentationTask::evaluate(const EvalOptions& options) {
  const auto& samples = dataset_.split(options.split);
  const auto& labels = segmenter_.config.id2label;
  const bool write_predictions = !options.predictions_path.empty();
  const fs::path pred_dir = options.predictions_path;
  if (write_predictions) check_predictions_dir(options.predictions_path, options.split);
  metrics::SegmentationAccumulator acc(static_cast<int>(segmenter_.config.num_labels()), data::kIgnoreLabel);
  segmenter_.model->eval();
  EvalResult result;
  EvalLossMean loss;
  // Pictures show label ids as 8-bit maps (as --predictions writes them): models of more labels get none.
  const int64_t plot_examples = segmenter_.config.num_labels() <= 255 ? options.plot_examples : 0;
  if (options.plot_examples > 0 && plot_examples == 0)
    log::warn("--plots: the model has {} labels; the example pictures show ids 0..254 only, so none are drawn",
              segmenter_.config.num_labels());
  const EvalLoopOptions loop{static_cast<int64_t>(samples.size()), eval_batch_size_, num_workers_, options.split,
                             options.show_progress, options.group};
  run_eval_loop(
      loop, [&](int64_t begin, int64_t end) { return eval_batch(samples, begin, end); },
      [&](const tensor::Batch& batch) {
        torch::Tensor logits = segmenter_.logits(batch.pixel_values, options.bf16);
        double loss_sum = 0, loss_pixels = 0;  // the batch's loss over its pixels, as HF's loss pools them
        for (int64_t i = 0; i < batch.size(); ++i) {
          const torch::Tensor& truth = batch.label_maps[static_cast<size_t>(i)];
          if (options.compute_loss) {
            // HF's loss with the logits upsampled to the seg map's size (here the original one, the pixels the
            // metrics count); a mean over the pixels that are not 255 (all of them for a single label's BCE).
            const double pixels = segmenter_.config.num_labels() == 1
                                      ? static_cast<double>(truth.numel())
                                      : static_cast<double>((truth != data::kIgnoreLabel).sum().item<int64_t>());
            loss_sum += models::segmentation_loss(logits[i].unsqueeze(0), truth.to(logits.device()).unsqueeze(0),
                                                  data::kIgnoreLabel)
                            .item<double>() *
                        pixels;
            loss_pixels += pixels;
          }
          torch::Tensor pred = models::label_map_at(logits[i], truth.size(0), truth.size(1));
          tensor::add_label_maps(acc, pred, truth);
          const int64_t index = batch.indices[static_cast<size_t>(i)];
          const auto& entry = samples[static_cast<size_t>(index)];
          if (index < plot_examples) {
            // Only a few images: decoded again here rather than carried through every batch.
            data::SegmentationSample s = read_eval_sample(entry, segmenter_, dataset_);
            result.examples.push_back({fs::path(entry.image).lexically_relative(dataset_.dir).generic_string(),
                                       std::move(s.image), std::move(s.label_map), models::label_map_image(pred)});
          }
          if (!write_predictions) continue;
          io::write_png((pred_dir / entry.seg_map_rel).string(), models::label_map_image(pred));
        }
        if (loss_pixels > 0) loss.add(loss_sum / loss_pixels, batch.size());
      });
  if (write_predictions) log::info("wrote {} predicted label maps under {}", samples.size(), pred_dir.string());

  std::vector<int64_t> counts = acc.counts();
  sum_over_ranks(options.group, counts);
  acc.set_counts(counts);
  const metrics::SegmentationMetrics m = acc.compute();
  result.metrics = m.to_json(labels);
  result.scalars = {{"mean_iou", m.mean_iou},
                    {"mean_accuracy", m.mean_accuracy},
                    {"overall_accuracy", m.overall_accuracy}};
  // Per-class IoU as eval/iou/<label>; a class absent from prediction and truth has none (NaN) and is not logged.
  for (size_t c = 0; c < labels.size(); ++c)
    if (std::isfinite(m.per_category_iou[c])) result.scalars["iou/" + labels[c]] = m.per_category_iou[c];
  if (options.compute_loss) result.set_loss(loss.mean(options.group));
  return result;
}

std::vector<std::string> SegmentationTask::metric_names() const {
  std::vector<std::string> names{"mean_iou", "mean_accuracy", "overall_accuracy", "loss"};
  for (const auto& label : segmenter_.config.id2label) names.push_back("iou/" + label);
  return names;
}

std::vector<ParamGroup> SegmentationTask::param_groups(double weight_decay) {
  // HF Trainer's grouping: no weight decay on biases and normalisation (LayerNorm, BatchNorm) weights.
  std::set<std::string> norm_params;
  for (const auto& item : segmenter_.model->named_modules()) {
    const auto& m = item.value();
    if (m->as<torch::nn::LayerNorm>() || m->as<torch::nn::BatchNorm2d>())
      for (const auto& p : m->named_parameters(/*recurse=*/false))
        norm_params.insert(item.key().empty() ? p.key() : item.key() + "." + p.key());
  }
  ParamGroup decay, no_decay;
  decay.weight_decay = weight_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& item : segmenter_.model->named_parameters()) {
    const std::string& name = item.key();
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    ParamGroup& g = is_bias || norm_params.count(name) ? no_decay : decay;
    g.names.push_back(name);
    g.params.push_back(item.value());
  }
  return {decay, no_decay};
}

void SegmentationTask::save_model(const fs::path& dir) { segmenter_.save(dir); }

}  // namespace em::train
