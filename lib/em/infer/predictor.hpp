// Model folder -> predictions: preprocessing, a batched forward pass and the response JSON (docs/em-predict.md), for
// every algorithm. em-predict and em-serve both go through here, so the same request gives the same bytes from either.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/core/algo.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/io/request.hpp"
#include "em/tensor/precision_choice.hpp"

namespace em::infer {

struct PredictOptions {
  int64_t top_k = 5;        // classification: labels returned per image (HF pipeline default); 0 = all
  double threshold = -1;    // detection: score threshold; < 0 = the model's saved threshold
  bool bf16 = false;        // --bf16: the same as precision "bf16"
  // --precision: auto (""), fp32 or bf16 (tensor::choose_inference_precision); Predictor::load resolves it with bf16
  // and hands the algorithm's predictor bf16 = whether the forward pass runs under bf16 autocast.
  std::string precision;

  // em::UsageError for a --precision word other than auto/fp32/bf16, or --bf16 with --precision auto/fp32.
  void validate() const;
  std::string device = "auto";  // --device: auto, cpu, cuda, cuda:N (tensor::resolve_device; LOCAL_RANK applies)
};

// One preprocessed image, ready to batch with others (em-serve batches across requests).
struct Prepared {
  torch::Tensor pixel_values;  // [3,H,W]
  int original_width = 0, original_height = 0;
  io::RequestParameters parameters;  // this image's request's options, applied after the forward pass
};

class Predictor {
 public:
  virtual ~Predictor() = default;
  // Reads the model folder; the algorithm comes from config.json's model_type. The model runs on options.device
  // (resolved first: an unusable device is an em::UsageError before the model loads); answers are the same bytes
  // on every device up to the last bits of the scores.
  static std::unique_ptr<Predictor> load(const std::string& model_dir, const PredictOptions& options);

  virtual Algo algo() const = 0;
  // The precision the forward pass runs in, and why (em-serve reports it; load() logs it).
  const tensor::PrecisionChoice& precision() const { return precision_; }
  // The model's id2label in id order (what em-predict --draw colours by).
  virtual const std::vector<std::string>& labels() const = 0;
  // Thread-safe: em-serve calls these from many threads.
  virtual Prepared prepare(const io::Image& image) const = 0;
  // Pixels (height x width) of the model input prepare() makes of a width x height image, from the preprocessor
  // config alone: em-serve budgets a request's memory from image headers before decoding anything.
  virtual int64_t input_pixels(int width, int height) const = 0;
  // One response list per image (docs/em-predict.md), for a batch of any size.
  virtual std::vector<io::Json> predict(const std::vector<Prepared>& batch) const = 0;

  // em::Error naming "request: parameters.NAME" for a request parameter this model's algorithm does not take
  // (classification takes top_k, detection threshold, segmentation none).
  void check_parameters(const io::RequestParameters& parameters) const;

  // Decodes every instance's bytes first (errors name "request: instances[i]"), then predicts in batches of
  // max_batch_size.
  std::vector<io::Json> predict_bytes(const std::vector<std::string>& images, int64_t max_batch_size = 16,
                                      const io::RequestParameters& parameters = {}) const;
  // predict_bytes() that also writes each image's label map to output_dir / file_names[i] (em-predict
  // --output_dir). Only algorithms whose predictions are label maps write them; the others throw em::UsageError.
  virtual std::vector<io::Json> predict_bytes_to_folder(const std::vector<std::string>& images,
                                                        const std::vector<std::string>& file_names,
                                                        const std::string& output_dir,
                                                        int64_t max_batch_size = 16) const;

  // Decodes and prepares each instance's bytes (errors name "request: instances[i]"), releasing each encoded image
  // once it is prepared: em-predict and em-serve decode requests alike.
  std::vector<Prepared> prepare_bytes(std::vector<std::string> images,
                                      const io::RequestParameters& parameters = {}) const;

 private:
  tensor::PrecisionChoice precision_;
};

// The response body: for one instance its list, for several a list of lists.
io::Json make_response(std::vector<io::Json> per_instance);
std::string format_response(const io::Json& response);  // compact JSON + "\n" (em-predict and em-serve alike)

// em-predict's answer for image files (JSONL): one line {"image": PATH, "predictions": [...]} per image, in order,
// for one image as for many, so that a glob matching one file gives the same shape.
std::string format_image_lines(const std::vector<std::string>& paths, std::vector<io::Json> per_image);

}  // namespace em::infer
