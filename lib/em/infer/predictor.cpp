#include "em/infer/predictor.hpp"

#include "em/core/chunks.hpp"
#include "em/core/cpu_features.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/infer/classification_predictor.hpp"
#include "em/infer/segmentation_predictor.hpp"
#include "em/infer/detection_predictor.hpp"
#include "em/models/model_folder.hpp"
#include "em/tensor/device.hpp"

#include <filesystem>

namespace em::infer {

namespace {

template <typename T>
std::unique_ptr<Predictor> make(const std::string& model_dir, const PredictOptions& options,
                                const torch::Device& device) {
  return std::make_unique<T>(model_dir, options, device);
}

// Each algorithm's Predictor, by the Algo of core/algo.cpp's table.
struct PredictorRow {
  Algo algo;
  std::unique_ptr<Predictor> (*load)(const std::string& model_dir, const PredictOptions& options,
                                     const torch::Device& device);
};
constexpr PredictorRow kPredictors[] = {
    {Algo::classification, make<ClassificationPredictor>},
    {Algo::segmentation, make<SegmentationPredictor>},
    {Algo::detection, make<DetectionPredictor>},
};
static_assert(one_row_per_algo(kPredictors), "kPredictors: one Predictor per algorithm, in enum order");

}  // namespace

void PredictOptions::validate() const { tensor::precision_mode_of_flags(precision, bf16); }

std::unique_ptr<Predictor> Predictor::load(const std::string& model_dir, const PredictOptions& options) {
  const torch::Device device = tensor::resolve_device(options.device, tensor::local_rank_from_env());
  const Algo algo = models::algo_of_model_dir(model_dir);
  const tensor::PrecisionChoice precision = tensor::choose_inference_precision(
      tensor::precision_mode_of_flags(options.precision, options.bf16), algo, device, host_cpu_features());
  PredictOptions resolved = options;
  resolved.bf16 = precision.precision == tensor::Precision::bf16;
  auto predictor = kPredictors[index_of(algo)].load(model_dir, resolved, device);
  predictor->precision_ = precision;
  if (!device.is_cpu()) log::info("{}: running on {}", model_dir, device.str());
  log::info("{}: precision: {}", model_dir, precision.describe());
  return predictor;
}

void Predictor::check_parameters(const io::RequestParameters& parameters) const {
  const Algo a = algo();
  if (parameters.top_k && a != Algo::classification)
    fail("request: parameters.top_k: only classification models take it (this model is {})", algo_name(a));
  if (parameters.threshold && a != Algo::detection)
    fail("request: parameters.threshold: only detection models take it (this model is {})", algo_name(a));
}

std::vector<Prepared> Predictor::prepare_bytes(std::vector<std::string> images,
                                               const io::RequestParameters& parameters) const {
  check_parameters(parameters);
  std::vector<Prepared> prepared;
  prepared.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    prepared.push_back(prepare(io::decode_image(images[i], fmt::format("request: instances[{}]", i), 3)));
    prepared.back().parameters = parameters;
    std::string().swap(images[i]);  // the encoded bytes are not needed once prepared
  }
  return prepared;
}

std::vector<io::Json> Predictor::predict_bytes(const std::vector<std::string>& images, int64_t max_batch_size,
                                               const io::RequestParameters& parameters) const {
  const std::vector<Prepared> prepared = prepare_bytes(images, parameters);
  std::vector<io::Json> out;
  for_each_chunk(prepared.size(), static_cast<size_t>(max_batch_size), [&](size_t begin, size_t end) {
    for (auto& r : predict(std::vector<Prepared>(prepared.begin() + begin, prepared.begin() + end)))
      out.push_back(std::move(r));
  });
  return out;
}

std::vector<io::Json> Predictor::predict_bytes_to_folder(const std::vector<std::string>&,
                                                         const std::vector<std::string>&, const std::string& output_dir,
                                                         int64_t) const {
  usage_fail("--output_dir {}: only segmentation models write label maps (this model is {})", output_dir,
             algo_name(algo()));
}

io::Json make_response(std::vector<io::Json> per_instance) {
  if (per_instance.size() == 1) return std::move(per_instance[0]);
  io::Json all = io::Json::array();
  for (auto& r : per_instance) all.push_back(std::move(r));
  return all;
}

std::string format_response(const io::Json& response) { return io::dump_json(response) + "\n"; }

std::string format_image_lines(const std::vector<std::string>& paths, std::vector<io::Json> per_image) {
  std::string out;
  for (size_t i = 0; i < paths.size(); ++i) {
    io::Json line = io::Json::object();
    line["image"] = paths[i];
    line["predictions"] = std::move(per_image.at(i));
    out += format_response(line);
  }
  return out;
}

}  // namespace em::infer
