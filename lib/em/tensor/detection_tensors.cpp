#include "em/tensor/detection_tensors.hpp"

#include <algorithm>
#include <cstring>

#include <torch/torch.h>

#include "em/core/error.hpp"

namespace em::tensor {

PaddedBatch pad_images(const std::vector<torch::Tensor>& images) {
  if (images.empty()) fail("pad_images: no images");
  int64_t H = 0, W = 0;
  const int64_t C = images.front().size(0);
  for (const auto& t : images) {
    if (t.dim() != 3 || t.size(0) != C || t.scalar_type() != torch::kFloat32)
      fail("pad_images: expected float [{}, H, W] images, got {} {}", C, c10::toString(t.scalar_type()),
           c10::str(t.sizes()));
    H = std::max(H, t.size(1));
    W = std::max(W, t.size(2));
  }
  const int64_t N = static_cast<int64_t>(images.size());
  PaddedBatch out;
  out.pixel_values = torch::zeros({N, C, H, W}, torch::kFloat32);
  out.pixel_mask = torch::zeros({N, H, W}, torch::kInt64);
  // Plain copies (no LibTorch ops): loader workers call this.
  float* dst = out.pixel_values.data_ptr<float>();
  int64_t* mask = out.pixel_mask.data_ptr<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    torch::Tensor src_t = images[static_cast<size_t>(n)].contiguous();
    const float* src = src_t.data_ptr<float>();
    const int64_t h = src_t.size(1), w = src_t.size(2);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < h; ++y)
        std::memcpy(dst + ((n * C + c) * H + y) * W, src + (c * h + y) * w, static_cast<size_t>(w) * sizeof(float));
    for (int64_t y = 0; y < h; ++y) std::fill(mask + (n * H + y) * W, mask + (n * H + y) * W + w, int64_t{1});
  }
  return out;
}

torch::Tensor normalized_cxcywh(const BoxTargets& targets, int frame_width, int frame_height) {
  torch::Tensor out = torch::empty({static_cast<int64_t>(targets.size()), 4}, torch::kFloat32);
  float* p = out.data_ptr<float>();
  const float fw = static_cast<float>(frame_width), fh = static_cast<float>(frame_height);
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& b = targets.boxes[i];
    p[4 * i + 0] = (b[0] + b[2]) / 2 / fw;
    p[4 * i + 1] = (b[1] + b[3]) / 2 / fh;
    p[4 * i + 2] = (b[2] - b[0]) / fw;
    p[4 * i + 3] = (b[3] - b[1]) / fh;
  }
  return out;
}

}  // namespace em::tensor
