#include "em/infer/detection_predictor.hpp"

#include <algorithm>
#include <numeric>

namespace em::infer {

DetectionPredictor::DetectionPredictor(const std::string& model_dir, const PredictOptions& options,
                                       const torch::Device& device)
    : detector_(models::Detector::load(model_dir)), options_(options) {
  detector_.to_device(device);
  threshold_ = options.threshold >= 0 ? options.threshold : detector_.config.threshold;
}

Prepared DetectionPredictor::prepare(const io::Image& image) const {
  return {detector_.preprocess(image), image.width, image.height};
}

int64_t DetectionPredictor::input_pixels(int width, int height) const {
  const auto [h, w] = detector_.preprocessor.output_size(height, width);
  return int64_t{h} * w;
}

std::vector<io::Json> DetectionPredictor::predict(const std::vector<Prepared>& batch) const {
  std::vector<torch::Tensor> images;
  std::vector<std::array<int, 2>> original_sizes;
  for (const auto& p : batch) {
    images.push_back(p.pixel_values);
    original_sizes.push_back({p.original_height, p.original_width});
  }
  // Each image's own threshold (its request's parameter, else the model's or --threshold): one post-processing at
  // the lowest, then each image keeps the scores above its own, compared in float as the post-processing does.
  double lowest = 1;
  for (const auto& p : batch) lowest = std::min(lowest, p.parameters.threshold.value_or(threshold_));
  torch::NoGradGuard no_grad;
  auto detections = detector_.detect(images, original_sizes, lowest, options_.bf16);
  std::vector<io::Json> out;
  for (size_t i = 0; i < detections.size(); ++i) {
    const auto& d = detections[i];
    const auto own = static_cast<float>(batch[i].parameters.threshold.value_or(threshold_));
    std::vector<size_t> order;
    for (size_t k = 0; k < d.scores.size(); ++k)
      if (d.scores[k] > own) order.push_back(k);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return d.scores[a] > d.scores[b]; });
    const float w = static_cast<float>(batch[i].original_width), h = static_cast<float>(batch[i].original_height);
    // HF's pipeline: box.int() (truncation) of the post-processed box; we clip to the image first.
    auto px = [](float v, float hi) { return static_cast<int64_t>(std::clamp(v, 0.0f, hi)); };
    io::Json list = io::Json::array();
    for (size_t k : order) {
      const auto& b = d.boxes[k];
      list.push_back({{"score", d.scores[k]},
                      {"label", detector_.config.id2label[static_cast<size_t>(d.labels[k])]},
                      {"box", {{"xmin", px(b[0], w)}, {"ymin", px(b[1], h)}, {"xmax", px(b[2], w)}, {"ymax", px(b[3], h)}}}});
    }
    out.push_back(std::move(list));
  }
  return out;
}

}  // namespace em::infer
