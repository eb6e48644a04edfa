// preprocessor_config.json: the fields of HF's PIL-based ("slow") image processors, read, checked and written so that
// a model/ folder loads in HF transformers: ViTImageProcessor (classification: resize to height x width, rescale by
// 1/255, normalise by mean/std), SegformerImageProcessor (the same, + do_reduce_labels), ConvNextImageProcessor
// (microsoft/resnet-50: shortest edge / crop_pct, then a centre crop) and DetrImageProcessor (detection). A field that
// would change the pixels in a way emkit does not implement is refused, never ignored (docs/models.md, "Image
// processors"). No LibTorch here (the fuzz build compiles it beside em_base); preprocessor.hpp and detector.cpp
// apply them.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "em/io/json.hpp"

namespace em::models {

struct PreprocessorConfig {
  bool do_resize = true;
  // The model input: "size": {"height", "width"} (or an integer, with the square processors) resizes to exactly
  // height x width. With size.shortest_edge (ConvNextImageProcessor) both are shortest_edge, the crop's size.
  int64_t height = 224;
  int64_t width = 224;
  // > 0: "size": {"shortest_edge": n} of ConvNextImageProcessor (an integer "size" means the same there): below 384
  // the short side is resized to int(n / crop_pct) keeping the aspect ratio, then the centre n x n is cropped; from
  // 384 the image is resized straight to n x n.
  int64_t shortest_edge = 0;
  double crop_pct = 224.0 / 256.0;  // ConvNextImageProcessor's (HF's default when absent or null)
  int resample = 2;  // PIL code: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming (ConvNext's default 3)
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::vector<double> image_mean{0.485, 0.456, 0.406};  // ImageNet (HF's IMAGENET_DEFAULT_MEAN/STD)
  std::vector<double> image_std{0.229, 0.224, 0.225};
  // As the file gives it; "" = the file names none (then none is written back; see processor_class()).
  std::string image_processor_type = "ViTImageProcessor";
  // Fields we do not interpret (other processors' options, feature_extractor_type), kept and written back unchanged.
  io::Json extra = io::Json::object();

  // The classification default: resize to input_size x input_size, bilinear, ImageNet mean/std.
  static PreprocessorConfig classification(int64_t input_size);
  // The segmentation default (SegformerImageProcessor): image_size x image_size, bilinear, ImageNet mean/std,
  // do_reduce_labels false (label maps hold the ids of id2label as they are).
  static PreprocessorConfig segmentation(int64_t image_size);

  // The class HF's AutoImageProcessor builds from the file: image_processor_type, else feature_extractor_type with
  // "FeatureExtractor" read as "ImageProcessor" (microsoft/resnet-50's ConvNextFeatureExtractor), else "".
  std::string processor_class() const;
  // SegformerImageProcessor's do_reduce_labels (the older "reduce_labels" wins when given, as in HF): label maps are
  // reduced before the loss and the metrics (0 -> 255, every other id - 1, 254 -> 255).
  bool reduce_labels() const;

  // What preprocess_image does to an image of image_height x image_width: resize to resize_height x resize_width
  // (no-op when equal), then keep the height x width pixels whose top-left corner is (crop_left, crop_top).
  struct Geometry {
    int resize_height = 0, resize_width = 0;
    int crop_top = 0, crop_left = 0;
    int height = 0, width = 0;
  };
  // Throws em::Error when the resized image would pass io::max_image_pixels() (an extreme aspect ratio).
  Geometry geometry(int image_height, int image_width) const;

  // Checks the values; `what` prefixes the messages. Throws em::Error.
  void validate(const std::string& what) const;
  // Reads an HF preprocessor_config.json object. "size" may be {"height", "width"} or an integer (square; for
  // ConvNextImageProcessor the shortest edge) or, for ConvNextImageProcessor, {"shortest_edge": n}. Throws em::Error
  // naming the field for what emkit cannot reproduce (e.g. do_center_crop of an unknown processor).
  static PreprocessorConfig from_json(const io::Json& json, const std::string& what);
  static PreprocessorConfig read(const std::string& path);
  io::Json to_json() const;
};

// preprocessor_config.json of HF's DetrImageProcessor: resize with `resample` keeping the aspect ratio (size
// {"shortest_edge", "longest_edge"} or {"max_height", "max_width"}) or to an exact {"height", "width"}, rescale 1/255,
// ImageNet normalisation, pad bottom/right with a pixel mask (pad_size is refused). Also reads the older DetrFeatureExtractor form ("size": 800, "max_size": 1333) of facebook/detr-*.
struct DetrImageProcessorConfig {
  // The fields every HF image processor shares (do_resize, resample, do_rescale, rescale_factor, do_normalize,
  // image_mean/std, image_processor_type, unknown fields kept); its height/width are not used.
  PreprocessorConfig common;
  int64_t shortest_edge = 800;
  int64_t longest_edge = 1333;  // 0 = no limit
  int64_t height = 0, width = 0;  // > 0: size {"height", "width"}, resize to exactly that (no aspect ratio)
  // > 0: size {"max_height", "max_width"}: scaled by min(max_height / h, max_width / w), truncated (aspect kept)
  int64_t max_height = 0, max_width = 0;
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
