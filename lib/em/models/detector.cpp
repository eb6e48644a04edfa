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

// ============================================================================================ preprocessor config

DetrImageProcessorConfig DetrImageProcessorConfig::for_image_size(int64_t image_size) {
  DetrImageProcessorConfig p;
  p.common.image_processor_type = "DetrImageProcessor";
  p.shortest_edge = image_size;
  p.longest_edge = data::detr_longest_edge(image_size);
  return p;
}

DetrImageProcessorConfig DetrImageProcessorConfig::from_json(const io::Json& json, const std::string& what) {
  if (!json.is_object()) fail("{}: expected a JSON object (an HF preprocessor_config.json)", what);
  DetrImageProcessorConfig p;
  auto positive = [&](const io::Json& v, const std::string& field) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
      fail("{}: field \"{}\": expected a positive integer, got {}", what, field, io::dump_json(v));
    return v.get<int64_t>();
  };
  // The shared fields through the common reader; "size", "max_size" and "do_pad" are DETR's.
  io::Json rest = json;
  rest.erase("size");
  rest.erase("max_size");
  rest.erase("do_pad");
  rest.erase("pad_and_return_pixel_mask");
  p.common = PreprocessorConfig::from_json(rest, what);
  if (!json.contains("image_processor_type")) p.common.image_processor_type = "DetrImageProcessor";
  if (p.common.resample != 2)
    log::warn("{}: field \"resample\" is {}; emkit resizes detection images bilinearly (2)", what, p.common.resample);
  if (p.common.image_mean.size() != 3) fail("{}: field \"image_mean\": expected 3 values (RGB)", what);

  auto size = json.find("size");
  if (size == json.end()) {
    // HF's default when a config names no size.
  } else if (size->is_number_integer()) {
    // DetrFeatureExtractor (facebook/detr-resnet-50): "size": 800, "max_size": 1333.
    p.shortest_edge = positive(*size, "size");
    p.longest_edge = json.contains("max_size") ? positive(json.at("max_size"), "max_size") : 1333;
  } else if (size->is_object() && size->contains("shortest_edge")) {
    p.shortest_edge = positive(size->at("shortest_edge"), "size.shortest_edge");
    p.longest_edge = size->contains("longest_edge") && !size->at("longest_edge").is_null()
                         ? positive(size->at("longest_edge"), "size.longest_edge")
                         : 0;
  } else if (size->is_object() && size->contains("height") && size->contains("width")) {
    p.height = positive(size->at("height"), "size.height");
    p.width = positive(size->at("width"), "size.width");
  } else {
    fail("{}: field \"size\": expected {{\"shortest_edge\": N, \"longest_edge\": M}}, {{\"height\": H, \"width\": W}} "
         "or an integer, got {}",
         what, io::dump_json(*size));
  }
  for (const char* key : {"do_pad", "pad_and_return_pixel_mask"})
    if (auto it = json.find(key); it != json.end()) {
      if (!it->is_boolean()) fail("{}: field \"{}\": expected true or false, got {}", what, key, io::dump_json(*it));
      p.do_pad = it->get<bool>();
    }
  return p;
}

DetrImageProcessorConfig DetrImageProcessorConfig::read(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

io::Json DetrImageProcessorConfig::to_json() const {
  io::Json j = common.to_json();
  if (height > 0)
    j["size"] = {{"height", height}, {"width", width}};
  else if (longest_edge > 0)
    j["size"] = {{"shortest_edge", shortest_edge}, {"longest_edge", longest_edge}};
  else
    j["size"] = {{"shortest_edge", shortest_edge}};
  j["do_pad"] = do_pad;
  // DETR's own fields last, in a fixed order (a read-back keeps them in `extra`, which would move them).
  io::Json format = j.contains("format") ? j["format"] : io::Json("coco_detection");
  io::Json convert = j.contains("do_convert_annotations") ? j["do_convert_annotations"] : io::Json(true);
  j.erase("format");
  j.erase("do_convert_annotations");
  j["format"] = format;
  j["do_convert_annotations"] = convert;
  return j;
}

std::pair<int, int> DetrImageProcessorConfig::output_size(int h, int w) const {
  if (!common.do_resize) return {h, w};
  if (height > 0) return {static_cast<int>(height), static_cast<int>(width)};
  return data::detr_resize_size(h, w, shortest_edge, longest_edge);
}

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
  if (h != rgb.height || w != rgb.width) rgb = data::resize_bilinear(rgb, w, h);
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
  tensor::require_finite(out.logits, "detection");
  tensor::require_finite(out.pred_boxes, "detection");
  // pred_boxes are relative to the padded input: scale by the padded size, then from the resized image back to the
  // original (target size = padded size in original pixels).
  std::vector<std::array<double, 2>> target_sizes;
  const std::array<int, 2> padded{static_cast<int>(pixel_values.size(2)), static_cast<int>(pixel_values.size(3))};
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
