#include "em/infer/segmentation_predictor.hpp"
#include "em/tensor/finite.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/core/chunks.hpp"
#include "em/core/error.hpp"
#include "em/data/transforms.hpp"
#include "em/io/base64.hpp"

#include <array>
#include <map>

namespace em::infer {
namespace fs = std::filesystem;

SegmentationPredictor::SegmentationPredictor(const std::string& model_dir, const PredictOptions& options,
                                             const torch::Device& device)
    : segmenter_(models::Segmenter::load(model_dir, /*channels_last=*/true)), options_(options) {
  segmenter_.to_device(device);
}

Prepared SegmentationPredictor::prepare(const io::Image& image) const {
  return {segmenter_.preprocess(image), image.width, image.height};
}

int64_t SegmentationPredictor::input_pixels(int width, int height) const {
  const auto& p = segmenter_.preprocessor;
  return p.do_resize ? p.width * p.height : int64_t{width} * height;
}

std::vector<io::Image> SegmentationPredictor::label_maps(const std::vector<Prepared>& batch) const {
  std::vector<torch::Tensor> inputs;
  for (const auto& p : batch) inputs.push_back(p.pixel_values);
  torch::NoGradGuard no_grad;
  torch::Tensor logits = segmenter_.logits(tensor::stack_tensors(inputs), options_.bf16);
  tensor::require_finite(logits, "segmentation");
  std::vector<io::Image> out;
  for (size_t i = 0; i < batch.size(); ++i)
    out.push_back(models::label_map_image(
        models::label_map_at(logits[static_cast<int64_t>(i)], batch[i].original_height, batch[i].original_width)));
  return out;
}

std::vector<io::Json> SegmentationPredictor::predict(const std::vector<Prepared>& batch) const {
  std::vector<io::Json> out;
  for (const auto& map : label_maps(batch)) out.push_back(segmentation_response(map, labels()));
  return out;
}

std::vector<io::Json> SegmentationPredictor::predict_bytes_to_folder(const std::vector<std::string>& images,
                                                                     const std::vector<std::string>& file_names,
                                                                     const std::string& output_dir,
                                                                     int64_t max_batch_size) const {
  if (file_names.size() != images.size())
    fail("predict_bytes_to_folder: {} file names for {} images", file_names.size(), images.size());
  const std::vector<Prepared> prepared = prepare_bytes(images);
  std::vector<io::Json> out;
  for_each_chunk(prepared.size(), static_cast<size_t>(max_batch_size), [&](size_t begin, size_t end) {
    const std::vector<io::Image> maps =
        label_maps(std::vector<Prepared>(prepared.begin() + begin, prepared.begin() + end));
    for (size_t i = 0; i < maps.size(); ++i) {
      io::write_png((fs::path(output_dir) / file_names[begin + i]).string(), maps[i]);
      out.push_back(segmentation_response(maps[i], labels()));
    }
  });
  return out;
}

io::Json segmentation_response(const io::Image& label_map, const std::vector<std::string>& labels) {
  if (label_map.channels != 1) fail("segmentation response: the label map must have one channel");
  std::array<bool, 256> present{};
  for (uint8_t v : label_map.pixels) present[v] = true;
  io::Json list = io::Json::array();
  io::Image mask;
  mask.width = label_map.width;
  mask.height = label_map.height;
  mask.channels = 1;
  mask.pixels.resize(label_map.pixels.size());
  for (size_t id = 0; id < present.size(); ++id) {
    if (!present[id]) continue;
    if (id >= labels.size()) fail("segmentation response: label id {} but the model has {} labels", id, labels.size());
    for (size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = label_map.pixels[i] == id ? 255 : 0;
    list.push_back({{"score", nullptr}, {"label", labels[id]}, {"mask", io::base64_encode(io::encode_png(mask))}});
  }
  return list;
}

std::vector<std::string> label_map_file_names(const std::vector<std::string>& image_paths, size_t num_images,
                                              const fs::path& output_dir, const std::string& flag) {
  std::vector<std::string> names;
  std::map<std::string, size_t> first;
  std::error_code ec;
  std::map<fs::path, std::string> inputs;
  for (const auto& p : image_paths) inputs.emplace(fs::weakly_canonical(p, ec), p);
  for (size_t i = 0; i < num_images; ++i) {
    std::string name = image_paths.empty() ? std::to_string(i) + ".png"
                                           : fs::path(image_paths[i]).stem().string() + ".png";
    if (auto [it, fresh] = first.emplace(name, i); !fresh)
      usage_fail("{}: {} and {} would both be written as {}; predict them in separate runs or rename one", flag,
                 image_paths[it->second], image_paths[i], name);
    if (auto input = inputs.find(fs::weakly_canonical(output_dir / name, ec)); input != inputs.end())
      usage_fail("{}: {} would overwrite the input image {}; choose another folder", flag,
                 (output_dir / name).string(), input->second);
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace em::infer
