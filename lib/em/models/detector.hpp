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
  // detect()'s second half, on an output already computed (evaluation scores the same forward pass with the loss):
  // the finite check, HF's post_process_object_detection with each image's frame, detections on the host.
  // `padded` is the batch's (height, width).
  static std::vector<ImageDetections> detections_of(const DetrOutput& out, const std::array<int, 2>& padded,
                                                    const std::vector<std::array<int, 2>>& input_sizes,
                                                    const std::vector<std::array<int, 2>>& original_sizes,
                                                    double threshold);
};

}  // namespace em::models
