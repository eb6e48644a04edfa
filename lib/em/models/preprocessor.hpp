// preprocessor_config.json: HF ViTImageProcessor's fields (classification) and SegformerImageProcessor's (resize to
// height x width, rescale by 1/255, normalise by mean/std), read and written so that a model/ folder loads in HF
// transformers; and the one function that applies them to an image.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/io/image.hpp"
#include "em/io/json.hpp"

namespace at {
class Tensor;
}

namespace em::models {

struct PreprocessorConfig {
  bool do_resize = true;
  int64_t height = 224;  // "size": {"height", "width"}
  int64_t width = 224;
  int resample = 2;  // PIL code: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::vector<double> image_mean{0.485, 0.456, 0.406};  // ImageNet (HF's IMAGENET_DEFAULT_MEAN/STD)
  std::vector<double> image_std{0.229, 0.224, 0.225};
  // ViTImageProcessor does exactly the square resize above (ConvNextImageProcessor would crop instead).
  std::string image_processor_type = "ViTImageProcessor";
  // Fields we do not interpret (other processors' options), kept and written back unchanged.
  io::Json extra = io::Json::object();

  // The classification default: resize to input_size x input_size, bilinear, ImageNet mean/std.
  static PreprocessorConfig classification(int64_t input_size);
  // The segmentation default (SegformerImageProcessor): image_size x image_size, bilinear, ImageNet mean/std,
  // do_reduce_labels false (label maps hold the ids of id2label as they are).
  static PreprocessorConfig segmentation(int64_t image_size);

  // Checks the values; `what` prefixes the messages. Throws em::Error.
  void validate(const std::string& what) const;
  // Reads an HF preprocessor_config.json object. "size" may be {"height", "width"}, an int (square) or
  // {"shortest_edge": n} (read as n x n, with a warning: we resize to a square and do not crop).
  static PreprocessorConfig from_json(const io::Json& json, const std::string& what);
  static PreprocessorConfig read(const std::string& path);
  io::Json to_json() const;
};

// One decoded image -> [3, height, width] float, exactly as HF's processor with this config: to RGB, bilinear resize
// (PIL-exact) unless already that size, rescale, normalise. Shared by training, em-eval, em-predict and em-serve.
at::Tensor preprocess_image(const PreprocessorConfig& config, const io::Image& image);

}  // namespace em::models
