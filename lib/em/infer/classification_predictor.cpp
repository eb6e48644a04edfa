#include "em/infer/classification_predictor.hpp"
#include "em/tensor/finite.hpp"
#include "em/tensor/image_tensor.hpp"

#include "em/data/transforms.hpp"

namespace em::infer {

ClassificationPredictor::ClassificationPredictor(const std::string& model_dir, const PredictOptions& options,
                                                 const torch::Device& device)
    : classifier_(models::Classifier::load(model_dir, /*channels_last=*/true)), options_(options) {
  classifier_.to_device(device);
}

Prepared ClassificationPredictor::prepare(const io::Image& image) const {
  return {classifier_.preprocess(image), image.width, image.height};
}

int64_t ClassificationPredictor::input_pixels(int width, int height) const {
  const auto& p = classifier_.preprocessor;
  return p.do_resize ? p.width * p.height : int64_t{width} * height;
}

std::vector<io::Json> ClassificationPredictor::predict(const std::vector<Prepared>& batch) const {
  std::vector<torch::Tensor> inputs;
  for (const auto& p : batch) inputs.push_back(p.pixel_values);
  torch::NoGradGuard no_grad;
  torch::Tensor probs = torch::softmax(classifier_.logits(tensor::stack_tensors(inputs), options_.bf16), 1);
  tensor::require_finite(probs, "classification");
  const int64_t num_labels = probs.size(1);
  // Each image's own top_k (its request's parameter, else --top_k); one topk() for the largest, sorted.
  auto k_of = [&](const Prepared& p) {
    const int64_t k = p.parameters.top_k.value_or(options_.top_k);
    return k > 0 ? std::min(k, num_labels) : num_labels;
  };
  int64_t max_k = 1;
  for (const auto& p : batch) max_k = std::max(max_k, k_of(p));
  auto [scores, ids] = probs.topk(max_k, 1, /*largest=*/true, /*sorted=*/true);
  auto s = scores.accessor<float, 2>();
  auto id = ids.accessor<int64_t, 2>();
  std::vector<io::Json> out;
  for (int64_t i = 0; i < probs.size(0); ++i) {
    io::Json list = io::Json::array();
    const int64_t k = k_of(batch[static_cast<size_t>(i)]);
    for (int64_t j = 0; j < k; ++j)
      list.push_back({{"score", s[i][j]}, {"label", classifier_.config.id2label[static_cast<size_t>(id[i][j])]}});
    out.push_back(std::move(list));
  }
  return out;
}

}  // namespace em::infer
