#include "common/predict_flags.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/infer/segmentation_predictor.hpp"

namespace em::cli {

void bind_model_flag(CLI::App& app, std::string& model_dir) {
  app.add_option("--model", model_dir, "Model folder (a run's model/ or checkpoint-N/)")->required();
}

void bind_precision_flags(CLI::App& app, bool& bf16, std::string& precision) {
  app.add_option("--precision", precision,
                 "Forward-pass precision: auto (bf16 on a CPU with AMX-BF16 for the algorithms where it was measured "
                 "faster, else fp32; fp32 on CUDA), fp32 or bf16 (docs/devices.md). The choice is logged at start")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->default_str("auto");
  app.add_flag("--bf16", bf16,
               "The same as --precision bf16: bf16 autocast (AVX-512-BF16/AMX CPUs, GPUs since Ampere)");
}

void bind_device_flag(CLI::App& app, std::string& device) {
  app.add_option("--device", device,
                 "Where the model runs: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N; under a launcher "
                 "LOCAL_RANK picks the GPU (docs/devices.md)")
      ->capture_default_str();
}

void bind_batch_size_flag(CLI::App& app, int64_t& batch_size, const std::string& old_name) {
  const std::string also = old_name.empty() ? "" : fmt::format(" (the same flag as {})", old_name);
  // CLI11 names only the first spelling in its errors: this check names both, whichever the user typed.
  CLI::Validator at_least_one(
      [also](std::string& text) {
        int64_t n = 0;
        if (CLI::detail::lexical_cast(text, n) && n >= 1) return std::string();
        return fmt::format("{}: not a whole number of at least 1{}", text, also);
      },
      "POSITIVE");
  app.add_option(old_name.empty() ? "--batch_size" : "--batch_size," + old_name, batch_size,
                 "Images per forward pass")
      ->check(at_least_one)
      ->capture_default_str();
}

void bind_predict_flags(CLI::App& app, std::string& model_dir, infer::PredictOptions& options) {
  bind_model_flag(app, model_dir);
  bind_predict_options(app, options);
}

void bind_predict_options(CLI::App& app, infer::PredictOptions& options) {
  app.add_option("--top_k", options.top_k, "Classification: labels per image, best first (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threshold", options.threshold, "Detection: score threshold (default: the one saved with the model)")
      ->check(CLI::Range(0.0, 1.0));
  bind_precision_flags(app, options.bf16, options.precision);
  bind_device_flag(app, options.device);
}

std::vector<std::string> draw_paths(const std::string& out, const std::vector<std::string>& images, size_t num_images,
                                    const std::string& output_dir) {
  namespace fs = std::filesystem;
  if (out.empty()) return {};
  if (out == "-") usage_fail("--draw: give a PNG file or a folder; stdout carries the response JSON");
  std::error_code ec;
  const bool folder = num_images > 1 || fs::is_directory(out, ec) || out.back() == '/';
  if (!folder) {
    std::string ext = fs::path(out).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext != ".png") usage_fail("--draw {}: the picture is a PNG; name it NAME.png (or give a folder)", out);
    for (const auto& image : images)
      if (fs::weakly_canonical(image, ec) == fs::weakly_canonical(out, ec))
        usage_fail("--draw {}: this is the input image; choose another name", out);
    return {out};
  }
  if ((fs::exists(out, ec) && !fs::is_directory(out, ec)) || (!fs::is_directory(out, ec) && out.back() != '/' &&
                                                               fs::path(out).extension() == ".png"))
    usage_fail("--draw {}: {} images need a folder, and this names a file", out, num_images);
  if (!output_dir.empty() && fs::weakly_canonical(out, ec) == fs::weakly_canonical(output_dir, ec))
    usage_fail("--draw {}: the same folder as --output_dir; the pictures and label maps would have the same names",
               out);
  std::vector<std::string> paths;
  for (const auto& name : infer::label_map_file_names(images, num_images, out, "--draw"))
    paths.push_back((fs::path(out) / name).string());
  return paths;
}

}  // namespace em::cli
