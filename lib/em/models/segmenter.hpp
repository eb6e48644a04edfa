// A semantic-segmentation model as the tools use it: SegFormer config + module + its preprocessing, created for
// training or loaded from a model folder (config.json, model.safetensors, preprocessor_config.json), and the one
// post-processing (logits -> label map at the original size) shared by em-train, em-eval, em-predict and em-serve.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/io/image.hpp"
#include "em/models/model_folder.hpp"
#include "em/models/preprocessor.hpp"
#include "em/models/segformer.hpp"

namespace em::models {

struct Segmenter : ModelParts<SegformerConfig, SegformerForSemanticSegmentation, PreprocessorConfig> {
  // HF's base_model_prefix of the task model: --init also takes a checkpoint of the bare model
  // (SegformerModel: "encoder...").
  static constexpr const char* kBaseModelPrefix = "segformer";

  // The architecture of `model_config`: a built-in name (mit-b0..mit-b5), an HF config.json path or a model folder
  // holding one; "" = the algorithm's default model (core/algo.cpp: mit-b3, SegFormer-B3). Unknown names are usage
  // errors listing the built-ins.
  static SegformerConfig resolve_config(const std::string& model_config);
  // A fresh model with these labels (class id = position), initialised from the current torch seed (HF's init).
  static Segmenter create(const SegformerConfig& architecture, std::vector<std::string> labels, int64_t image_size);
  // A saved model folder (ours or an HF SegformerForSemanticSegmentation folder), loaded strictly, in eval mode.
  // channels_last: built channels-last and filled that way (prediction), instead of use_channels_last() after.
  static Segmenter load(const std::filesystem::path& dir, bool channels_last = false);

  // One decoded image -> [3, height, width] as the model's processor does it (RGB, resize, rescale, normalize).
  torch::Tensor preprocess(const io::Image& image) const;
  // Logits [N, num_labels, h/4, w/4] in fp32 for a batch, on the module's device (label_map_at upsamples them
  // there); the caller holds NoGradGuard, sets eval mode and chooses bf16.
  torch::Tensor logits(const torch::Tensor& pixel_values, bool bf16) const;
};

// HF's post_process_semantic_segmentation with target_sizes: one image's logits [num_labels, h, w] upsampled
// bilinearly (align_corners false) to height x width, then argmax over the labels -> int64 [height, width], on the
// logits' device.
torch::Tensor label_map_at(const torch::Tensor& logits, int64_t height, int64_t width);

// An int64/uint8 [H, W] label map (on any device) as a one-channel 8-bit image (ids must be < 256).
io::Image label_map_image(const torch::Tensor& label_map);

}  // namespace em::models
