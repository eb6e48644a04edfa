#include "em/tensor/image_tensor.hpp"

#include <cstring>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "em/core/error.hpp"

namespace em::tensor {

torch::Tensor to_normalized_tensor(const Image& image, const std::array<float, 3>& mean,
                                   const std::array<float, 3>& std) {
  data::check_image(image, "to_normalized_tensor");
  if (image.channels != 3) fail("to_normalized_tensor: expected 3 channels, got {}", image.channels);
  const int64_t plane = static_cast<int64_t>(image.width) * image.height;
  torch::Tensor out = torch::empty({3, image.height, image.width}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    // HF's order of operations: rescale (x * 1/255) then (x - mean) / std.
    const float m = mean[c], s = std[c];
    float* p = dst + c * plane;
    for (int64_t i = 0; i < plane; ++i) p[i] = (image.pixels[i * 3 + c] * (1.0f / 255.0f) - m) / s;
  }
  return out;
}

torch::Tensor preprocess_classification(const Image& image, int input_size) {
  if (input_size < 1) fail("preprocess: input_size must be >= 1, got {}", input_size);
  Image rgb = data::to_rgb(image);
  return to_normalized_tensor(data::resize_bilinear(rgb, input_size, input_size));
}

torch::Tensor stack_tensors(const std::vector<torch::Tensor>& items) {
  if (items.empty()) fail("stack_tensors: no tensors");
  const auto& first = items.front();
  std::vector<int64_t> shape = {static_cast<int64_t>(items.size())};
  for (auto d : first.sizes()) shape.push_back(d);
  torch::Tensor out = torch::empty(shape, first.options());
  const size_t bytes = first.numel() * first.element_size();
  auto* dst = static_cast<char*>(out.data_ptr());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& t = items[i];
    if (t.sizes() != first.sizes() || t.scalar_type() != first.scalar_type() || t.device() != first.device())
      fail("stack_tensors: item {} has shape {} {} but item 0 has {} {}", i, fmt::join(t.sizes(), "x"),
           std::string(c10::toString(t.scalar_type())), fmt::join(first.sizes(), "x"),
           std::string(c10::toString(first.scalar_type())));
    torch::Tensor src = t.contiguous();
    if (!src.device().is_cpu()) fail("stack_tensors: expected CPU tensors");
    std::memcpy(dst + i * bytes, src.data_ptr(), bytes);
  }
  return out;
}

}  // namespace em::tensor
