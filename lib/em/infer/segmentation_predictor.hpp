// Segmentation predictions: one label map per image at its original size (HF's post_process_semantic_segmentation),
// answered as the HF image-segmentation pipeline does: [{"score": null, "label", "mask": base64 PNG 0/255}] per
// class present, ascending id; optionally also written as label PNGs (em-predict --output_dir).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "em/infer/predictor.hpp"
#include "em/models/segmenter.hpp"

namespace em::infer {

class SegmentationPredictor : public Predictor {
 public:
  // The model folder's model on `device` (Predictor::load resolves --device).
  SegmentationPredictor(const std::string& model_dir, const PredictOptions& options,
                        const torch::Device& device = torch::kCPU);
  Algo algo() const override { return Algo::segmentation; }
  Prepared prepare(const io::Image& image) const override;
  int64_t input_pixels(int width, int height) const override;
  std::vector<io::Json> predict(const std::vector<Prepared>& batch) const override;

  // The label map of each image (one channel, label ids, the image's original size).
  std::vector<io::Image> label_maps(const std::vector<Prepared>& batch) const;
  // predict_bytes() that also writes each image's label map to output_dir / file_names[i] (atomically).
  std::vector<io::Json> predict_bytes_to_folder(const std::vector<std::string>& images,
                                                const std::vector<std::string>& file_names,
                                                const std::string& output_dir,
                                                int64_t max_batch_size = 16) const override;
  const std::vector<std::string>& labels() const override { return segmenter_.config.id2label; }

 private:
  models::Segmenter segmenter_;
  PredictOptions options_;
};

// The response list for one label map: per class present, in ascending id, {"score": null, "label": name,
// "mask": base64 of a one-channel PNG, 255 where the class is and 0 elsewhere}.
io::Json segmentation_response(const io::Image& label_map, const std::vector<std::string>& labels);

// File names of the per-image PNGs em-predict writes into a folder (--output_dir's label maps, --draw's pictures):
// for image paths the file name with ".png" for its extension ("street/0001.jpg" -> "0001.png"); for request
// instances "<index>.png" ("0.png", "1.png", ...). Throws em::UsageError naming `flag` when two inputs would get one
// name, or when a name in output_dir is one of the input images (which would be overwritten).
std::vector<std::string> label_map_file_names(const std::vector<std::string>& image_paths, size_t num_images,
                                              const std::filesystem::path& output_dir,
                                              const std::string& flag = "--output_dir");

}  // namespace em::infer
