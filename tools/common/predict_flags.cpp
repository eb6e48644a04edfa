#include "common/predict_flags.hpp"

#include <fmt/format.h>

namespace em::cli {

void bind_model_flag(CLI::App& app, std::string& model_dir) {
  app.add_option("--model", model_dir, "Model folder (a run's model/ or checkpoint-N/)")->required();
}

void bind_bf16_flag(CLI::App& app, bool& bf16) {
  app.add_flag("--bf16", bf16, "bf16 autocast (faster on AVX-512/AMX CPUs and on GPUs since Ampere)");
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
  bind_bf16_flag(app, options.bf16);
  bind_device_flag(app, options.device);
}

}  // namespace em::cli
