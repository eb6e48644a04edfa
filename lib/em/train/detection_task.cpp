#include "em/train/detection_task.hpp"
#include "em/train/init_model.hpp"
#include "em/data/sampling.hpp"
#include "em/tensor/detection_tensors.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/split.hpp"
#include "em/io/file.hpp"
#include "em/models/model_folder.hpp"
#include "em/train/eval_loop.hpp"
#include "em/tensor/autocast.hpp"
#include "em/tensor/finite.hpp"

#include <cstring>
#include <mutex>
#include <type_traits>
#include <set>

namespace em::train {
namespace fs = std::filesystem;

namespace {

// The model's labels -> the split's category ids, by name (a model trained elsewhere, or a split whose categories are
// a subset of train's). Labels the split lacks map to -1: their detections are left out of the results.
std::vector<int64_t> map_labels_to_categories(const std::vector<std::string>& labels, const data::CocoSplit& split,
                                              const std::string& model_what) {
  std::map<std::string, int64_t> id_of;
  for (const auto& c : split.categories) id_of[c.name] = c.id;
  std::vector<int64_t> out;
  std::vector<std::string> unknown;
  for (const auto& name : labels) {
    auto it = id_of.find(name);
    out.push_back(it == id_of.end() ? -1 : it->second);
    if (it == id_of.end()) unknown.push_back(name);
  }
  std::set<std::string> known(labels.begin(), labels.end());
  std::vector<std::string> missing;
  for (const auto& c : split.categories)
    if (!known.count(c.name)) missing.push_back(c.name);
  if (unknown.size() == labels.size())
    fail("{}: none of the model's labels ({}) is a category of {} ({}); is it the right model?", model_what,
         fmt::format("{}", fmt::join(labels, ", ")), split.annotation_path,
         fmt::format("{}", fmt::join(missing, ", ")));
  if (!unknown.empty())
    log::warn("{}: model label(s) {} are not categories of {}; their detections are not scored", model_what,
              fmt::format("{}", fmt::join(unknown, ", ")), split.annotation_path);
  if (!missing.empty())
    log::warn("{}: categories {} are unknown to the model {} (they score AP 0 where they have boxes)",
              split.annotation_path, fmt::format("{}", fmt::join(missing, ", ")), model_what);
  return out;
}

void write_coco_results(const std::string& path, const metrics::CocoResults& results) {
  io::Json list = io::Json::array();
  for (const auto& d : results.detections)
    list.push_back({{"image_id", d.image_id},
                    {"category_id", d.category_id},
                    {"bbox", {d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]}},
                    {"score", d.score}});
  io::write_file_atomic(path, io::dump_json(list) + "\n");
}

// One image's detections as COCO results (xywh boxes, the split's category ids; labels mapped to -1 are left out).
void add_results(metrics::CocoResults& results, int64_t image_id, const models::ImageDetections& d,
                 const std::vector<int64_t>& category_of_label) {
  for (size_t k = 0; k < d.scores.size(); ++k) {
    const int64_t category = category_of_label[static_cast<size_t>(d.labels[k])];
    if (category < 0) continue;
    const auto& b = d.boxes[k];
    metrics::CocoDetection det;
    det.image_id = image_id;
    det.category_id = category;
    det.bbox = {b[0], b[1], static_cast<double>(b[2]) - b[0], static_cast<double>(b[3]) - b[1]};
    det.score = d.scores[k];
    results.detections.push_back(det);
  }
}

}  // namespace

DetectionTask::DetectionTask(const TrainOptions& opts)
    : dataset_(data::DetectionDataset::load(opts.data_dir)),
      augmentation_(data::parse_detection_augmentation(opts.hp.augmentation)),
      image_size_(opts.hp.image_size),
      seed_(static_cast<uint64_t>(opts.hp.seed)),
      eval_batch_size_(opts.hp.per_device_eval_batch_size),
      num_workers_(static_cast<int>(opts.hp.num_workers)),
      data_dir_(opts.data_dir) {
  torch::manual_seed(opts.hp.seed);
  const std::string architecture = training_model_config(opts.model_config, opts.init, Algo::detection);
  detector_ = models::Detector::create(architecture, dataset_.labels(), opts.hp.image_size, opts.hp.threshold);
  if (!opts.init.empty()) {
    models::InitOptions io_opts;
    io_opts.base_model_prefix = models::Detector::kBaseModelPrefix;
    // DetrForObjectDetection's class head: one row per label, then the no-object row (the box head is not per label).
    init_model(*detector_.model, opts.init, dataset_.labels(), io_opts,
               {{"class_labels_classifier."}, {"class_labels_classifier.weight", "class_labels_classifier.bias"}},
               opts.init_partial);
  }
  for (const auto& c : dataset_.categories) {
    label_of_category_[c.id] = static_cast<int64_t>(category_of_label_.size());
    category_of_label_.push_back(c.id);
  }
  int64_t boxes = 0, crowd = 0;
  for (const auto& img : dataset_.train.images)
    for (const auto& b : img.boxes) (b.iscrowd ? crowd : boxes) += 1;
  log::info("detection: {} labels, {} train images ({} boxes, {} crowd regions not trained on) / {} validation, {} "
            "at shortest edge {} (longest {}), augmentation {}",
            dataset_.categories.size(), dataset_.train.images.size(), boxes, crowd, dataset_.validation.images.size(),
            models::model_config_name(architecture, Algo::detection), image_size_,
            detector_.preprocessor.longest_edge, opts.hp.augmentation);
}

DetectionTask::DetectionTask(const std::string& model_dir, const std::string& data_dir, int64_t eval_batch_size,
                             int num_workers)
    : detector_(models::Detector::load(model_dir)),
      eval_batch_size_(eval_batch_size),
      num_workers_(num_workers),
      from_model_dir_(true),
      data_dir_(data_dir) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec))
    fail("{}: no such dataset folder (expected {}/validation/{})", data_dir, data_dir, data::kCocoAnnotationFile);
}

const data::CocoSplit& DetectionTask::split(const std::string& name) {
  if (name != "train" && name != "validation" && name != "test")
    usage_fail("--split: unknown split '{}' (expected train, validation or test)", name);
  if (!from_model_dir_) {
    return data::pick_split(data_dir_, name, dataset_.train, dataset_.validation, dataset_.test,
                            [](const data::CocoSplit& s) { return s.exists; });
  }
  auto it = eval_splits_.find(name);
  if (it == eval_splits_.end()) {
    data::CocoSplit s = data::read_coco_split(data_dir_, name);
    if (!s.exists) fail("{}: {}", s.problems.front().path, s.problems.front().reason);
    s.require_ok();
    it = eval_splits_.emplace(name, std::move(s)).first;
  }
  return it->second;
}

data::BoxTargets DetectionTask::targets_of(const data::CocoImageRecord& image, int width, int height,
                                          const std::map<int64_t, int64_t>& label_of) const {
  data::BoxTargets t;
  const double w = width, h = height;
  for (const auto& b : image.boxes) {
    if (b.iscrowd) continue;  // crowd regions are not targets (the original ConvertCocoPolysToMask, HF)
    const auto& bb = b.bbox;
    if (!std::isfinite(bb[0]) || !std::isfinite(bb[1]) || !std::isfinite(bb[2]) || !std::isfinite(bb[3])) continue;
    // xywh -> xyxy, clipped to the image; degenerate ones dropped (as the original and HF prepare the targets).
    const double x0 = std::clamp(bb[0], 0.0, w), y0 = std::clamp(bb[1], 0.0, h);
    const double x1 = std::clamp(bb[0] + bb[2], 0.0, w), y1 = std::clamp(bb[1] + bb[3], 0.0, h);
    if (!(x1 > x0 && y1 > y0)) continue;
    const auto label = label_of.find(b.category_id);
    if (label == label_of.end()) continue;  // a category the model has no label for
    t.boxes.push_back({static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1), static_cast<float>(y1)});
    t.labels.push_back(label->second);
  }
  return t;
}

tensor::Batch DetectionTask::train_batch(const std::vector<int64_t>& indices, int64_t epoch) {
  static std::mutex warned_mutex;
  static std::set<std::string> warned;
  tensor::Batch batch;
  std::vector<torch::Tensor> images;
  std::vector<data::BoxTargets> targets;
  for (int64_t index : indices) {
    const auto& record = dataset_.train.images[static_cast<size_t>(index)];
    io::Image image;
    try {
      image = io::read_image(record.path, 3);
    } catch (const Error& e) {
      log::warn("skipping {}", e.what());
      ++batch.skipped;
      continue;
    }
    if ((record.width > 0 && record.width != image.width) || (record.height > 0 && record.height != image.height)) {
      std::lock_guard<std::mutex> lock(warned_mutex);
      if (warned.insert(record.path).second)
        log::warn("{}: images[{}] declares {}x{} but the file is {}x{}; boxes are clipped to the file's size",
                  dataset_.train.annotation_path, record.index, record.width, record.height, image.width,
                  image.height);
    }
    data::BoxTargets t = targets_of(record, image.width, image.height, label_of_category_);
    data::detection_train_transform(image, t, data::sample_seed(seed_, epoch, index), augmentation_, image_size_);
    images.push_back(detector_.normalize(image));
    targets.push_back(std::move(t));
    batch.indices.push_back(index);
  }
  if (images.empty()) return batch;
  tensor::PaddedBatch padded = tensor::pad_images(images);
  batch.pixel_values = padded.pixel_values;
  batch.pixel_mask = padded.pixel_mask;
  const int frame_h = static_cast<int>(padded.pixel_values.size(2)), frame_w = static_cast<int>(padded.pixel_values.size(3));
  for (const auto& t : targets)
    batch.boxes.push_back({torch::tensor(t.labels, torch::kInt64), tensor::normalized_cxcywh(t, frame_w, frame_h)});
  return batch;
}

LossOutput DetectionTask::loss(const tensor::Batch& batch) {
  if (batch.size() == 0) fail("a training batch has no readable image");
  models::DetrOutput out = detector_.model->forward(batch.pixel_values, batch.pixel_mask);
  models::DetrLossOptions options = models::DetrLossOptions::from_config(detector_.config);
  if (loss_normalised_over_ranks())
    options.mean_boxes_over_ranks = [this](double boxes) {
      torch::Tensor t = torch::tensor({boxes}, torch::kFloat64).to(group_->device());
      group_->all_reduce_sum(t);
      return t.cpu().item<double>() / group_->size();
    };
  models::DetrLoss l = models::detr_loss(out, batch.boxes, options);
  LossOutput result{l.total, {}};
  for (const char* name : {"loss_ce", "loss_bbox", "loss_giou", "cardinality_error"}) {
    auto it = l.terms.find(name);
    if (it != l.terms.end()) result.terms[name] = it->second.item<double>();
  }
  return result;
}

tensor::Batch DetectionTask::eval_batch(const data::CocoSplit& s, int64_t begin, int64_t end,
                                        const std::map<int64_t, int64_t>* label_of) const {
  tensor::Batch batch;
  std::vector<torch::Tensor> images;
  std::vector<data::BoxTargets> targets;
  for (int64_t i = begin; i < end; ++i) {
    const auto& record = s.images[static_cast<size_t>(i)];
    const io::Image image = io::read_image(record.path, 3);
    images.push_back(detector_.preprocess(image));
    const int input_h = static_cast<int>(images.back().size(1)), input_w = static_cast<int>(images.back().size(2));
    batch.sizes.push_back({{image.height, image.width}, {input_h, input_w}});
    batch.indices.push_back(i);
    if (label_of == nullptr) continue;
    // The boxes resized with the image (HF's resize_annotation scales them by the size ratios).
    data::BoxTargets t = targets_of(record, image.width, image.height, *label_of);
    const float sx = static_cast<float>(input_w) / static_cast<float>(image.width);
    const float sy = static_cast<float>(input_h) / static_cast<float>(image.height);
    for (auto& b : t.boxes) b = {b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy};
    targets.push_back(std::move(t));
  }
  tensor::PaddedBatch padded = tensor::pad_images(images);
  batch.pixel_values = padded.pixel_values;
  batch.pixel_mask = padded.pixel_mask;
  const int frame_h = static_cast<int>(padded.pixel_values.size(2)), frame_w = static_cast<int>(padded.pixel_values.size(3));
  for (const auto& t : targets)
    batch.boxes.push_back({torch::tensor(t.labels, torch::kInt64), tensor::normalized_cxcywh(t, frame_w, frame_h)});
  return batch;
}

namespace {
// Every rank's detections, in rank order (= image order, the shards being contiguous), on every rank: the bytes of
// each CocoDetection as they are, so the scores are bit-exact.
void gather_over_ranks(dist::Group* group, metrics::CocoResults& results) {
  if (group == nullptr || group->single()) return;
  static_assert(std::is_trivially_copyable_v<metrics::CocoDetection>);
  const auto& mine = results.detections;
  const std::string bytes(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(metrics::CocoDetection));
  std::vector<metrics::CocoDetection> all;
  for (const std::string& part : group->all_gather_bytes(bytes)) {
    const size_t n = part.size() / sizeof(metrics::CocoDetection);
    const size_t at = all.size();
    all.resize(at + n);
    std::memcpy(static_cast<void*>(all.data() + at), part.data(), n * sizeof(metrics::CocoDetection));
  }
  results.detections = std::move(all);
}
}  // namespace

EvalResult DetectionTask::evaluate(const EvalOptions& options) {
  const data::CocoSplit& s = split(options.split);
  if (s.images.empty()) fail("{}: split '{}' has no images to evaluate", s.annotation_path, options.split);
  const std::vector<int64_t> category_of_label =
      from_model_dir_ ? map_labels_to_categories(detector_.config.id2label, s, "the model") : category_of_label_;

  metrics::CocoResults results;
  detector_.model->eval();
  // With the loss, the boxes become targets with the model's labels: the inverse of category_of_label.
  std::map<int64_t, int64_t> label_of;
  for (size_t label = 0; label < category_of_label.size(); ++label)
    if (category_of_label[label] >= 0) label_of[category_of_label[label]] = static_cast<int64_t>(label);
  const models::DetrLossOptions loss_options = models::DetrLossOptions::from_config(detector_.config);
  EvalLossMean loss;
  const EvalLoopOptions loop{static_cast<int64_t>(s.images.size()), eval_batch_size_, num_workers_, options.split,
                             options.show_progress, options.group};
  run_eval_loop(
      loop,
      [&](int64_t begin, int64_t end) { return eval_batch(s, begin, end, options.compute_loss ? &label_of : nullptr); },
      [&](const tensor::Batch& batch) {
        std::vector<std::array<int, 2>> input_sizes, original_sizes;
        for (const auto& z : batch.sizes) {
          original_sizes.push_back(z.original);
          input_sizes.push_back(z.input);
        }
        // Threshold 0: every query, as DETR's PostProcess hands COCO evaluation (maxDets 100 then takes the best).
        std::vector<models::ImageDetections> detections;
        if (!options.compute_loss) {
          detections = detector_.detect(batch.pixel_values, batch.pixel_mask, input_sizes, original_sizes, 0.0,
                                        options.bf16);
        } else {
          // HF's DetrForObjectDetection with labels: the loss (auxiliary decoder layers included) of the same
          // forward pass whose predictions are scored.
          models::DetrOutput out;
          {
            const torch::Tensor x = detector_.to_model_input(batch.pixel_values);
            tensor::Bf16Autocast autocast(options.bf16, x.device());
            out = detector_.model->forward(x, batch.pixel_mask.to(x.device()));
            std::vector<models::DetrTarget> targets;
            for (const auto& t : batch.boxes) targets.push_back({t.labels.to(x.device()), t.boxes.to(x.device())});
            loss.add(models::detr_loss(out, targets, loss_options).total.item<double>(), batch.size());
          }
          detections = models::Detector::detections_of(
              out, {static_cast<int>(batch.pixel_values.size(2)), static_cast<int>(batch.pixel_values.size(3))},
              input_sizes, original_sizes, 0.0);
        }
        for (size_t i = 0; i < detections.size(); ++i)
          add_results(results, s.images[static_cast<size_t>(batch.indices[i])].id, detections[i], category_of_label);
      });
  if (!options.predictions_path.empty()) write_coco_results(options.predictions_path, results);
  gather_over_ranks(options.group, results);

  auto coco = std::make_shared<metrics::CocoEvalResult>(metrics::coco_evaluate(s, results));  // truth: the split
  EvalResult result;
  result.metrics = metrics::to_json(*coco);
  for (size_t i = 0; i < metrics::kCocoStatNames.size(); ++i) result.scalars[metrics::kCocoStatNames[i]] = coco->stats[i];
  result.coco = std::move(coco);
  if (options.compute_loss) result.set_loss(loss.mean(options.group));
  return result;
}

std::vector<std::string> DetectionTask::metric_names() const {
  std::vector<std::string> names(metrics::kCocoStatNames.begin(), metrics::kCocoStatNames.end());
  names.push_back("loss");
  return names;
}

std::vector<ParamGroup> DetectionTask::param_groups(double weight_decay) {
  const std::vector<std::string> backbone_names = detector_.model->backbone_parameter_names();
  const std::set<std::string> backbone(backbone_names.begin(), backbone_names.end());
  ParamGroup rest, backbone_group;
  rest.weight_decay = backbone_group.weight_decay = weight_decay;
  backbone_group.lr_scale = kBackboneLrScale;
  for (const auto& item : detector_.model->named_parameters()) {
    if (!item.value().requires_grad()) continue;  // conv1, layer1 (frozen, as the original)
    ParamGroup& g = backbone.count(item.key()) ? backbone_group : rest;
    g.names.push_back(item.key());
    g.params.push_back(item.value());
  }
  return {rest, backbone_group};
}

void DetectionTask::save_model(const fs::path& dir) { detector_.save(dir); }

}  // namespace em::train
