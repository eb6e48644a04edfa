// em-serve: the real-time inference endpoint (docs/em-serve.md) — POST /inference answers what em-predict prints.
#include "common/predict_flags.hpp"
#include "common/torch_cli.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/serve/serve.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> model_args;
  std::string ceiling_image;
  double ceiling_seconds = 3;
  std::vector<int64_t> ceiling_batch_sizes;
  em::infer::PredictOptions predict;
  em::serve::ServeOptions options;
  em::cli::ToolInfo info{
      "em-serve",
      "Serve trained models over HTTP: POST /inference takes the request JSON ({\"instances\": [{\"data\": "
      "BASE64}], \"parameters\": {...}}) and answers the response JSON, byte for byte what em-predict prints; "
      "KServe V1 (POST /v1/models/NAME:predict, GET /v1/models/NAME) and Open Inference Protocol V2 health and "
      "metadata (GET /v2/health/live, /v2/health/ready, /v2/models/NAME[/ready]) beside it; GET /metrics in "
      "Prometheus' text format; GET /health. The port answers liveness at once; the models load and run one "
      "warm-up pass, then 'listening on http://HOST:PORT' is logged and they answer. Concurrent requests are "
      "batched per model (up to --batch_size images, waiting at most --max_batch_delay_ms). Errors are JSON "
      "{\"error\": ...}: 400 malformed request or parameter, 404, 405, 408 head too slow, 413 body over "
      "--max_body_bytes or images over --max_request_mb, 431 head over --max_header_bytes, 503 busy/loading (with "
      "Retry-After), 504 past --request_timeout_ms. X-Request-Id is echoed. One access-log line per request on "
      "stderr. SIGINT/SIGTERM: finish the requests in flight, exit 0; a second signal kills at once.",
      "em-serve --model [NAME=]RUN/model [--model NAME=DIR ...] [--host 127.0.0.1] [--port 8080] [--batch_size 16] "
      "[--max_batch_delay_ms 5] [--max_queue_images 32] [--request_timeout_ms 0] [--log_format text|json] "
      "[--precision auto|fp32|bf16] [--device auto|cpu|cuda[:N]]",
      "em-serve --model run/model --port 8080 & em-b64 cat.png | curl -s --data-binary @- "
      "http://127.0.0.1:8080/inference",
      "em-predict(1), em-b64(1), docs/em-serve.md, docs/http-api.md"};
  info.keep_freed_memory = true;  // many forward passes: see core/allocator.hpp
  return em::cli::run_torch_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("--model", model_args,
                       "Model folder (a run's model/ or checkpoint-N/), as DIR (named after the folder) or NAME=DIR; "
                       "repeat for several models in one server (the first answers POST /inference)")
            ->required()
            ->expected(1)
            ->take_all();
        em::cli::bind_predict_options(app, predict);
        app.add_option("--host", options.host, "Address to listen on (0.0.0.0 = every interface)")
            ->capture_default_str();
        app.add_option("--port", options.port, "Port (0 = any free port; the chosen one is logged)")
            ->capture_default_str();
        app.add_option("--max_body_bytes", options.max_body_bytes, "Largest request body; larger ones get 413")
            ->capture_default_str();
        em::cli::bind_batch_size_flag(app, options.batching.max_batch_size, "--max_batch_size");
        app.add_option("--max_batch_delay_ms", options.batching.max_batch_delay_ms,
                       "Longest wait for more images to join a batch")
            ->capture_default_str();
        app.add_option("--http_threads", options.http_threads,
                       "Requests handled at once, from a whole head to the answer (waiting connections hold none)")
            ->capture_default_str();
        app.add_option("--read_timeout", options.read_timeout_s,
                       "Seconds a client may stay silent mid-body before it is answered 400 and dropped")
            ->capture_default_str();
        app.add_option("--header_timeout_s", options.header_timeout_s,
                       "Seconds from a request's first byte to its whole head (request line + headers); else 408")
            ->capture_default_str();
        app.add_option("--body_timeout_s", options.body_timeout_s,
                       "Seconds from a request's head to its whole body; else 400")
            ->capture_default_str();
        app.add_option("--max_header_bytes", options.max_header_bytes, "Largest request head; larger ones get 431")
            ->capture_default_str();
        app.add_option("--max_connections", options.max_connections,
                       "Connections open at once; past it the one waiting longest for a request is closed")
            ->capture_default_str();
        app.add_option("--keep_alive_timeout_s", options.keep_alive_timeout_s,
                       "Seconds an idle keep-alive connection stays open")
            ->capture_default_str();
        app.add_option("--keep_alive_max_requests", options.keep_alive_max_requests,
                       "Requests on one connection; the last one's answer closes it")
            ->capture_default_str();
        app.add_option("--max_queue_images", options.batching.max_queue_images,
                       "Images waiting for each model's forward pass at most; a request past it is answered 503 with "
                       "Retry-After at once (0 = no bound; a request always enters an empty queue)")
            ->capture_default_str();
        app.add_option("--request_timeout_ms", options.request_timeout_ms,
                       "Deadline of a prediction from its request's head: past it 504, and a request still queued "
                       "leaves the queue (0 = none)")
            ->capture_default_str();
        app.add_option("--log_format", options.log_format,
                       "Access log and messages on stderr: text lines, or json (one object per line)")
            ->check(CLI::IsMember({"text", "json"}))
            ->capture_default_str();
        app.add_option("--max_request_mb", options.memory.request_mb,
                       "MiB one request's decoded images and model inputs may take (from image headers); more: 413")
            ->capture_default_str();
        app.add_option("--max_memory_in_flight_mb", options.memory.in_flight_mb,
                       "MiB all requests' images may take together; a request waits for room, then gets 503")
            ->capture_default_str();
        app.add_option("--memory_wait_ms", options.memory.wait_ms,
                       "How long a request waits for room under --max_memory_in_flight_mb before its 503")
            ->capture_default_str();
        app.add_option("--measure_ceiling", ceiling_image,
                       "Do not serve: print the model's throughput (images/s) at batch sizes 1, 2, 4 ... "
                       "--batch_size on copies of this image, as JSON on stdout");
        app.add_option("--ceiling_seconds", ceiling_seconds, "--measure_ceiling: seconds per batch size")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        app.add_option("--ceiling_batch_sizes", ceiling_batch_sizes,
                       "--measure_ceiling: these batch sizes instead of 1, 2, 4 ... --batch_size")
            ->delimiter(',')
            ->check(CLI::PositiveNumber);
      },
      [&] {
        options.validate();
        predict.validate();
        const auto models = em::serve::parse_model_specs(model_args);
        if (!ceiling_image.empty()) {
          if (models.size() != 1) em::usage_fail("--measure_ceiling: give one --model, not {}", models.size());
          auto predictor = em::infer::Predictor::load(models[0].dir, predict);
          if (ceiling_batch_sizes.empty())
            ceiling_batch_sizes = em::serve::doubling_batch_sizes(options.batching.max_batch_size);
          auto result = em::serve::measure_ceiling(*predictor, em::io::read_image(ceiling_image, 3),
                                                   ceiling_batch_sizes, ceiling_seconds);
          em::io::write_stdout(em::io::dump_json(result) + "\n");
          return em::ExitCode::ok;
        }
        em::serve::serve(models, predict, options);
        return em::ExitCode::ok;
      });
}
