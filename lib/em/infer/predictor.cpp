#include "em/infer/predictor.hpp"

#include "em/core/error.hpp"
#include "em/infer/classification_predictor.hpp"
#include "em/infer/segmentation_predictor.hpp"
#include "em/infer/detection_predictor.hpp"
#include "em/models/model_kind.hpp"

#include <filesystem>

namespace em::infer {

std::unique_ptr<Predictor> Predictor::load(const std::string& model_dir, const PredictOptions& options) {
  switch (models::algo_of_model_dir(model_dir)) {
    case Algo::classification: return std::make_unique<ClassificationPredictor>(model_dir, options);
    case Algo::segmentation: return std::make_unique<SegmentationPredictor>(model_dir, options);
    case Algo::detection: return std::make_unique<DetectionPredictor>(model_dir, options);
  }
  fail("{}: unknown algorithm", model_dir);
}

std::vector<io::Json> Predictor::predict_bytes(const std::vector<std::string>& images, int64_t max_batch_size) const {
  std::vector<Prepared> prepared;
  prepared.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i)
    prepared.push_back(prepare(io::decode_image(images[i], fmt::format("request: instances[{}]", i), 3)));
  std::vector<io::Json> out;
  for (size_t start = 0; start < prepared.size(); start += static_cast<size_t>(max_batch_size)) {
    size_t end = std::min(prepared.size(), start + static_cast<size_t>(max_batch_size));
    auto part = predict(std::vector<Prepared>(prepared.begin() + start, prepared.begin() + end));
    for (auto& r : part) out.push_back(std::move(r));
  }
  return out;
}

io::Json make_response(std::vector<io::Json> per_instance) {
  if (per_instance.size() == 1) return std::move(per_instance[0]);
  io::Json all = io::Json::array();
  for (auto& r : per_instance) all.push_back(std::move(r));
  return all;
}

std::string format_response(const io::Json& response) { return io::dump_json(response) + "\n"; }

}  // namespace em::infer
