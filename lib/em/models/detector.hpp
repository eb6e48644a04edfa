// A detection model as the tools use it: DETR config + module + HF DetrImageProcessor preprocessing, created for
// training or loaded from a model folder (config.json, model.safetensors, preprocessor_config.json), and the one
// batched detect() that em-train's evaluation, em-eval, em-predict and em-serve share.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/models/detr.hpp"
#include "em/models/model_folder.hpp"
#include "em/models/detr_loss.hpp"
#include "em/models/preprocessor.hpp"

namespace em::models {

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
  static DetrImageProcessorConfig from_json(const io::Json& json, const std::string& what);
  static DetrImageProcessorConfig read(const std::string& path);
  io::Json to_json() const;
  // (height, width) an image of height x width is resized to.
  std::pair<int, int> output_size(int height, int width) const;
};

// Detections of one image in its original pixels, in query order.
struct ImageDetections {
  std::vector<float> scores;
  std::vector<int64_t> labels;
  std::vector<std::array<float, 4>> boxes;  // (xmin, ymin, xmax, ymax), not clipped to the image
};

struct Detector : ModelParts<DetrConfig, DetrForObjectDetection, DetrImageProcessorConfig> {
  // HF's base_model_prefix of the task model: --init also takes a checkpoint of the bare model
  // (DetrModel: "backbone...").
  static constexpr const char* kBaseModelPrefix = "model";

  // A fresh model: `model_config` is a built-in name (detr-resnet-50 = "", detr-resnet-18-tiny, ...) or an HF
  // config.json path. Weights from the current torch seed; labels and threshold set in the config.
  static Detector create(const std::string& model_config, std::vector<std::string> labels, int64_t image_size,
                         double threshold);
  // A saved model folder (ours or an HF DetrForObjectDetection folder with timm backbone names).
  static Detector load(const std::filesystem::path& dir);

  // One decoded image -> [3, h, w] float at the processor's size (RGB, bilinear resize, rescale, normalize).
  torch::Tensor preprocess(const io::Image& image) const;
  // Rescale + normalize only (the image is already at its input size: training resizes while augmenting).
  torch::Tensor normalize(const io::Image& image) const;

  // Eval-mode detections of a batch of preprocess()ed images of any sizes, padded together with a pixel mask (as
  // HF's processor and the original evaluation do); original_sizes[i] = (height, width) of image i before
  // preprocessing. Keeps queries whose best class scores > threshold (0 keeps every query: COCO evaluation).
  // The forward pass runs on the module's device; detections come back on the host. The caller holds a NoGradGuard.
  std::vector<ImageDetections> detect(const std::vector<torch::Tensor>& images,
                                      const std::vector<std::array<int, 2>>& original_sizes, double threshold,
                                      bool bf16) const;
  // The (height, width) in original pixels of the padded frame pred_boxes are relative to: an image resized from
  // `original` to `input` and padded to `padded` (all (height, width)). Relative boxes times this = original pixels.
  static std::array<double, 2> frame_in_original_pixels(const std::array<int, 2>& padded,
                                                        const std::array<int, 2>& input,
                                                        const std::array<int, 2>& original);
  // The same on a batch padded already (tensor::pad_images), with each image's own (height, width) in the batch.
  std::vector<ImageDetections> detect(const torch::Tensor& pixel_values, const torch::Tensor& pixel_mask,
                                      const std::vector<std::array<int, 2>>& input_sizes,
                                      const std::vector<std::array<int, 2>>& original_sizes, double threshold,
                                      bool bf16) const;
};

}  // namespace em::models
