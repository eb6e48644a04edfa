// em-predict: single-shot prediction — the request JSON (docs/http-api.md) on stdin, or image paths — to the
// response JSON.
#include "common/predict_flags.hpp"
#include "common/torch_cli.hpp"
#include "em/draw/pictures.hpp"
#include "em/infer/predictor.hpp"
#include "em/infer/segmentation_predictor.hpp"
#include "em/io/request.hpp"
#include "em/io/file.hpp"

int main(int argc, char** argv) {
  std::string model_dir, input = "-", output_dir, draw;
  std::vector<std::string> images;
  em::infer::PredictOptions options;
  int64_t batch_size = 16;
  bool compact = false;  // the output is one line per response already
  em::cli::ToolInfo info{
      "em-predict",
      "Predict with a trained model. Reads the inference request JSON ({\"instances\": [{\"data\": BASE64}]}) on "
      "stdin (or --input FILE) and prints the platform's response JSON on stdout: classification "
      "[{\"score\",\"label\"}], detection [{\"score\",\"label\",\"box\"}], segmentation [{\"score\",\"label\",\"mask\"}]; "
      "one list per instance, wrapped in a list when there are several. For image paths it prints JSONL, one line "
      "{\"image\": PATH, \"predictions\": [...]} per image.",
      "em-predict --model RUN/model [IMAGE...] [--top_k K] [--threshold T] [--output_dir DIR] [--draw OUT] "
      "[--precision auto|fp32|bf16] [--bf16] [--device auto|cpu|cuda[:N]]",
      "em-b64 cat.png | em-predict --model run/model | jq '.[0].label'\n"
      "  em-predict --model run/model *.png | jq -r '\"\\(.image)\\t\\(.predictions[0].label)\"'",
      "em-b64(1), em-serve(1), em-eval(1), docs/em-predict.md"};
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        em::cli::bind_predict_flags(app, model_dir, options);
        app.add_option("images", images, "Image files; without them the request JSON is read from --input");
        app.add_option("--input", input, "Request JSON file ('-' = stdin)");
        app.add_option("--output_dir", output_dir,
                       "Segmentation: also write each image's label map (PNG of label ids, original size) here: "
                       "IMAGE's name with .png, or <instance index>.png for a request");
        app.add_option("--draw", draw,
                       "Also draw the predictions on the images (detection: boxes with label and score; "
                       "segmentation: the label overlay with a legend; classification: the top-k bars) as PNG: a "
                       "file NAME.png for one image, else a folder with one PNG per image named as --output_dir "
                       "names label maps. The JSON on stdout is unchanged");
        em::cli::bind_batch_size_flag(app, batch_size);
        em::cli::bind_compact_flag(app, compact, "Accepted for uniformity: the output is one line per response already");
      },
      [&] {
        options.validate();
        // Read the input first: a bad request fails fast, before the model loads.
        std::vector<std::string> payloads;
        em::io::RequestParameters parameters;  // the request's "parameters" win over --top_k / --threshold
        if (images.empty()) {
          em::io::Request request = em::io::parse_request(em::io::read_file(input));
          payloads = std::move(request.images);
          parameters = request.parameters;
        } else {
          for (const auto& path : images) payloads.push_back(em::io::read_file(path));
        }
        std::vector<std::string> label_map_names;
        if (!output_dir.empty()) label_map_names = em::infer::label_map_file_names(images, payloads.size(), output_dir);
        const std::vector<std::string> pictures = em::cli::draw_paths(draw, images, payloads.size(), output_dir);
        auto predictor = em::infer::Predictor::load(model_dir, options);
        predictor->check_parameters(parameters);
        std::vector<em::io::Json> results;
        if (output_dir.empty()) {
          results = predictor->predict_bytes(payloads, batch_size, parameters);
        } else {
          results = predictor->predict_bytes_to_folder(payloads, label_map_names, output_dir, batch_size);
        }
        if (!pictures.empty())
          em::draw::write_prediction_pictures(pictures, payloads, predictor->algo(), results, predictor->labels());
        if (images.empty()) {
          em::io::write_stdout(em::infer::format_response(em::infer::make_response(std::move(results))));
        } else {
          em::io::write_stdout(em::infer::format_image_lines(images, std::move(results)));
        }
        return em::ExitCode::ok;
      });
}
