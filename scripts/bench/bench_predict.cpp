// em-predict's latency without process start and model load: one model folder loaded once through Predictor (as
// em-predict and em-serve do), one image (resized to --size x --size unless --size 0), then timed end to end (PNG
// decode, preprocess, forward, post-processing, response JSON) and for the prepared image alone (forward +
// post-processing). For every algorithm.
#include "common/torch_cli.hpp"
#include "em/data/transforms.hpp"
#include "em/infer/predictor.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

namespace {

em::io::Json summary(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  return {{"median", ms[ms.size() / 2]}, {"min", ms.front()}, {"max", ms.back()}, {"mean", mean}};
}

template <typename Fn>
std::vector<double> time_runs(int64_t runs, Fn fn) {
  std::vector<double> ms;
  for (int64_t i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, image_path;
  int64_t size = 512, runs = 10, warmup = 2;
  em::infer::PredictOptions options;
  em::cli::ToolInfo info{"em-bench-predict",
                         "Prediction latency of a model folder on one image (batch 1), in ms, as JSON.",
                         "em-bench-predict --model DIR --image FILE [--size 512|0] [--runs 10] [--warmup 2] [--bf16]",
                         "em-bench-predict --model run/model --image street.png --threads 2 | jq .end_to_end_ms.median",
                         "scripts/bench/bench_segmentation.sh, scripts/bench/bench_detection.sh"};
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("--model", model_dir, "Model folder")->required();
        app.add_option("--image", image_path, "Image file (resized to --size x --size first)")->required();
        app.add_option("--size", size, "Resize the image to this square size first (0 = as it is)")
            ->check(CLI::NonNegativeNumber);
        app.add_option("--runs", runs, "Timed runs")->check(CLI::PositiveNumber);
        app.add_option("--warmup", warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
        app.add_flag("--bf16", options.bf16, "bf16 autocast");
      },
      [&] {
        options.precision = options.bf16 ? "bf16" : "fp32";  // what was asked, never auto's choice
        auto predictor = em::infer::Predictor::load(model_dir, options);
        em::io::Image image = em::io::read_image(image_path, 3);
        if (size > 0) image = em::data::resize_bilinear(image, static_cast<int>(size), static_cast<int>(size));
        const std::string png = em::io::encode_png(image);
        const em::infer::Prepared prepared = predictor->prepare(image);
        time_runs(warmup, [&] { predictor->predict_bytes({png}); });
        auto end_to_end = time_runs(runs, [&] { predictor->predict_bytes({png}); });
        auto forward = time_runs(runs, [&] { predictor->predict({prepared}); });
        em::io::Json j{{"model", model_dir},
                       {"algo", em::algo_name(predictor->algo())},
                       {"image", std::to_string(image.width) + "x" + std::to_string(image.height)},
                       {"bf16", options.bf16},
                       {"runs", runs},
                       {"end_to_end_ms", summary(end_to_end)},
                       {"prepared_ms", summary(forward)}};
        em::io::write_stdout(em::io::dump_json(j) + "\n");
        return em::ExitCode::ok;
      });
}
