// Classification predictions: softmax over the model's labels, the top_k as [{"score", "label"}] sorted by score
// (the HF image-classification pipeline's shape; docs/em-predict.md).
#pragma once
#include "em/infer/predictor.hpp"
#include "em/models/classifier.hpp"

namespace em::infer {

class ClassificationPredictor : public Predictor {
 public:
  // The model folder's model on `device` (Predictor::load resolves --device).
  ClassificationPredictor(const std::string& model_dir, const PredictOptions& options,
                          const torch::Device& device = torch::kCPU);
  Algo algo() const override { return Algo::classification; }
  const std::vector<std::string>& labels() const override { return classifier_.config.id2label; }
  Prepared prepare(const io::Image& image) const override;
  int64_t input_pixels(int width, int height) const override;
  std::vector<io::Json> predict(const std::vector<Prepared>& batch) const override;

 private:
  models::Classifier classifier_;
  PredictOptions options_;
};

}  // namespace em::infer
