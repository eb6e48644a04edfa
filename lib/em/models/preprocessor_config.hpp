// preprocessor_config.json: HF ViTImageProcessor's fields (classification), SegformerImageProcessor's (resize to
// height x width, rescale by 1/255, normalise by mean/std) and DetrImageProcessor's (detection), read, checked and
// written so that a model/ folder loads in HF transformers. No LibTorch here (the fuzz build compiles it beside
// em_base); preprocessor.hpp and detector.cpp apply them.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "em/io/json.hpp"

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

// preprocessor_config.json of HF's DetrImageProcessor: resize keeping the aspect ratio (size {"shortest_edge",
// "longest_edge"}, or an exact {"height", "width"}), rescale 1/255, ImageNet normalisation, pad bottom/right with a
// pixel mask. Also reads the older DetrFeatureExtractor form ("size": 800, "max_size": 1333) of facebook/detr-*.
struct DetrImageProcessorConfig {
  // The fields every HF image processor shares (do_resize, resample, do_rescale, rescale_factor, do_normalize,
  // image_mean/std, image_processor_type, unknown fields kept); its height/width are not used.
  PreprocessorConfig common;
  int64_t shortest_edge = 800;
  int64_t longest_edge = 1333;  // 0 = no limit
  int64_t height = 0, width = 0;  // > 0: size {"height", "width"}, resize to exactly that (no aspect ratio)
  bool do_pad = true;

  // Shortest edge image_size, longest detr_longest_edge(image_size) (800 / 1333 by default).
  static DetrImageProcessorConfig for_image_size(int64_t image_size);
  // Checks the values (the common fields, and the sizes against the largest em-train writes); `what` prefixes the
  // messages. Throws em::Error.
  void validate(const std::string& what) const;
  static DetrImageProcessorConfig from_json(const io::Json& json, const std::string& what);
  static DetrImageProcessorConfig read(const std::string& path);
  io::Json to_json() const;
  // (height, width) an image of height x width is resized to.
  std::pair<int, int> output_size(int height, int width) const;
};

}  // namespace em::models
