#include "em/models/segmenter.hpp"

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_folder.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/ranges.h>

namespace em::models {
namespace fs = std::filesystem;

SegformerConfig Segmenter::resolve_config(const std::string& model_config) {
  return resolve_model_config<SegformerConfig>(model_config, Algo::segmentation);
}

Segmenter Segmenter::create(const SegformerConfig& architecture, std::vector<std::string> labels, int64_t image_size) {
  Segmenter s;
  build_parts(s, architecture, std::move(labels), "segformer config");
  s.preprocessor = PreprocessorConfig::segmentation(image_size);
  return s;
}

Segmenter Segmenter::load(const fs::path& dir, bool channels_last) {
  Segmenter s;
  const ModelFolder folder = load_parts(s, dir, Algo::segmentation, channels_last);
  const std::string pre_path = folder.preprocessor_path.string();
  if (!folder.has_preprocessor()) {
    s.preprocessor = PreprocessorConfig::segmentation(512);
    log::warn("{}: absent; resizing to {}x{} with ImageNet mean/std (SegformerImageProcessor's defaults)", pre_path,
              s.preprocessor.width, s.preprocessor.height);
    return s;
  }
  // do_reduce_labels (ADE20k-style: map value i + 1 is id i, 0 ignored) changes only how label maps are read for
  // evaluation (train/segmentation_task.cpp); predictions are the model's ids either way.
  return s;
}

torch::Tensor Segmenter::preprocess(const io::Image& image) const { return preprocess_image(preprocessor, image); }

torch::Tensor Segmenter::logits(const torch::Tensor& pixel_values, bool bf16) const {
  return fp32_forward(*this, pixel_values, bf16);
}

torch::Tensor label_map_at(const torch::Tensor& logits, int64_t height, int64_t width) {
  if (logits.dim() != 3)
    fail("segmentation: one image's logits must be [num_labels, h, w], got [{}]", fmt::join(logits.sizes(), ", "));
  return upsample_logits(logits.unsqueeze(0).to(torch::kFloat32), height, width).argmax(1).squeeze(0);
}

io::Image label_map_image(const torch::Tensor& label_map) {
  if (label_map.dim() != 2)
    fail("segmentation: a label map must be [H, W], got [{}]", fmt::join(label_map.sizes(), ", "));
  torch::Tensor ids = label_map.to(torch::kCPU);
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() > 255))
    fail("segmentation: label ids must fit in 8 bits (0..255) to be written as a PNG");
  ids = ids.to(torch::kUInt8).contiguous();
  io::Image img;
  img.height = static_cast<int>(ids.size(0));
  img.width = static_cast<int>(ids.size(1));
  img.channels = 1;
  img.pixels.resize(img.size());
  std::memcpy(img.pixels.data(), ids.data_ptr<uint8_t>(), img.pixels.size());
  return img;
}

}  // namespace em::models
