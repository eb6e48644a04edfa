// Detection predictions: DETR on the model's preprocessing, HF post_process_object_detection with the model's saved
// threshold (or --threshold), as [{"score", "label", "box": {"xmin", "ymin", "xmax", "ymax"}}] in original pixels
// (the HF object-detection pipeline's shape).
#pragma once
#include "em/infer/predictor.hpp"
#include "em/models/detector.hpp"

namespace em::infer {

class DetectionPredictor : public Predictor {
 public:
  // The model folder's model on `device` (Predictor::load resolves --device).
  DetectionPredictor(const std::string& model_dir, const PredictOptions& options,
                     const torch::Device& device = torch::kCPU);
  Algo algo() const override { return Algo::detection; }
  const std::vector<std::string>& labels() const override { return detector_.config.id2label; }
  Prepared prepare(const io::Image& image) const override;
  int64_t input_pixels(int width, int height) const override;
  // Images of different sizes are padded together with a pixel mask. Per image: detections scoring above the
  // threshold, best first; boxes clipped to the image and truncated to integer pixels as HF's pipeline does.
  std::vector<io::Json> predict(const std::vector<Prepared>& batch) const override;
  double threshold() const { return threshold_; }

 private:
  models::Detector detector_;
  PredictOptions options_;
  double threshold_ = 0.5;
};

}  // namespace em::infer
