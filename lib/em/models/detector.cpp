#include "em/models/detector.hpp"
#include "em/tensor/finite.hpp"
#include "em/tensor/detection_tensors.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/detection_transforms.hpp"
#include "em/data/transforms.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_folder.hpp"

#include <fmt/ranges.h>

namespace em::models {
namespace fs = std::filesystem;

// ============================================================================================ Detector

Detector Detector::create(const std::string& model_config, std::vector<std::string> labels, int64_t image_size,
                          double threshold) {
  Detector d;
  DetrConfig config = resolve_model_config<DetrConfig>(model_config, Algo::detection);
  config.threshold = threshold;
  build_parts(d, std::move(config), std::move(labels), model_config_name(model_config, Algo::detection));
  d.preprocessor = DetrImageProcessorConfig::for_image_size(image_size);
  return d;
}

Detector Detector::load(const fs::path& dir) {
  Detector d;
  const ModelFolder folder = load_parts(d, dir, Algo::detection, /*channels_last=*/false);
  if (!folder.has_preprocessor()) {
    d.preprocessor = DetrImageProcessorConfig::for_image_size(800);
    log::warn("{}: absent; using DETR's shortest edge 800 / longest 1333 with ImageNet mean/std",
              folder.preprocessor_path.string());
  }
  return d;
}

torch::Tensor Detector::normalize(const io::Image& image) const {
  const auto& p = preprocessor.common;
  const float scale = p.do_rescale ? static_cast<float>(p.rescale_factor * 255.0) : 255.0f;
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};
  for (int c = 0; c < 3; ++c) {
    // to_normalized_tensor computes (x/255 - mean)/std; fold the rescale factor and do_normalize into mean/std.
    if (p.do_normalize) {
      mean[c] = static_cast<float>(p.image_mean[static_cast<size_t>(c)]) / scale;
      std[c] = static_cast<float>(p.image_std[static_cast<size_t>(c)]) / scale;
    } else {
      std[c] = 1.0f / scale;
    }
  }
  return tensor::to_normalized_tensor(data::to_rgb(image), mean, std);
}

torch::Tensor Detector::preprocess(const io::Image& image) const {
  io::Image rgb = data::to_rgb(image);
  auto [h, w] = preprocessor.output_size(rgb.height, rgb.width);
  if (h != rgb.height || w != rgb.width)
    rgb = data::resize(rgb, w, h, data::pil_filter(preprocessor.common.resample, "preprocessor_config.json: resample"));
  return normalize(rgb);
}

std::array<double, 2> Detector::frame_in_original_pixels(const std::array<int, 2>& padded,
                                                         const std::array<int, 2>& input,
                                                         const std::array<int, 2>& original) {
  return {static_cast<double>(padded[0]) * original[0] / input[0],
          static_cast<double>(padded[1]) * original[1] / input[1]};
}

std::vector<ImageDetections> Detector::detect(const std::vector<torch::Tensor>& images,
                                              const std::vector<std::array<int, 2>>& original_sizes,
                                              double threshold, bool bf16) const {
  if (images.empty()) return {};
  tensor::PaddedBatch batch = tensor::pad_images(images);
  std::vector<std::array<int, 2>> input_sizes;
  for (const auto& t : images) input_sizes.push_back({static_cast<int>(t.size(1)), static_cast<int>(t.size(2))});
  return detect(batch.pixel_values, batch.pixel_mask, input_sizes, original_sizes, threshold, bf16);
}

std::vector<ImageDetections> Detector::detect(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask,
                                              const std::vector<std::array<int, 2>>& input_sizes,
                                              const std::vector<std::array<int, 2>>& original_sizes,
                                              double threshold, bool bf16) const {
  const size_t n = static_cast<size_t>(pixel_values.size(0));
  if (input_sizes.size() != n || original_sizes.size() != n)
    fail("detect: {} images but {} input and {} original sizes", n, input_sizes.size(), original_sizes.size());
  DetrOutput out;
  {
    const torch::Tensor x = to_model_input(pixel_values);
    const torch::Tensor mask = pixel_mask.defined() ? pixel_mask.to(x.device(), /*non_blocking=*/true) : pixel_mask;
    tensor::Bf16Autocast autocast(bf16, x.device());
    DetrForObjectDetection shared = model;  // a holder copy shares the module; forward is not const
    out = shared->forward(x, mask);
  }
  return detections_of(out, {static_cast<int>(pixel_values.size(2)), static_cast<int>(pixel_values.size(3))},
                       input_sizes, original_sizes, threshold);
}

std::vector<ImageDetections> Detector::detections_of(const DetrOutput& out, const std::array<int, 2>& padded,
                                                     const std::vector<std::array<int, 2>>& input_sizes,
                                                     const std::vector<std::array<int, 2>>& original_sizes,
                                                     double threshold) {
  const size_t n = static_cast<size_t>(out.logits.size(0));
  if (input_sizes.size() != n || original_sizes.size() != n)
    fail("detections_of: {} images but {} input and {} original sizes", n, input_sizes.size(), original_sizes.size());
  tensor::require_finite(out.logits, "detection");
  tensor::require_finite(out.pred_boxes, "detection");
  // pred_boxes are relative to the padded input: scale by the padded size, then from the resized image back to the
  // original (target size = padded size in original pixels).
  std::vector<std::array<double, 2>> target_sizes;
  for (size_t i = 0; i < n; ++i)
    target_sizes.push_back(frame_in_original_pixels(padded, input_sizes[i], original_sizes[i]));
  std::vector<DetrDetections> raw = post_process_object_detection(out.logits.to(torch::kFloat32),
                                                                  out.pred_boxes.to(torch::kFloat32), threshold,
                                                                  target_sizes);
  std::vector<ImageDetections> result(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const int64_t k = raw[i].scores.size(0);
    auto s = raw[i].scores.accessor<float, 1>();
    auto l = raw[i].labels.accessor<int64_t, 1>();
    auto b = raw[i].boxes.accessor<float, 2>();
    for (int64_t j = 0; j < k; ++j) {
      result[i].scores.push_back(s[j]);
      result[i].labels.push_back(l[j]);
      result[i].boxes.push_back({b[j][0], b[j][1], b[j][2], b[j][3]});
    }
  }
  return result;
}

}  // namespace em::models
