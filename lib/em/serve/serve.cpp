#include "em/serve/serve.hpp"

#include "em/core/plural.hpp"

#include "em/core/log.hpp"
#include "em/core/signals.hpp"
#include "em/models/model_folder.hpp"

#include <chrono>
#include <csignal>
#include <exception>
#include <thread>

namespace em::serve {

void serve(const std::vector<ModelSpec>& specs, const infer::PredictOptions& predict_options,
           const ServeOptions& options) {
  options.validate();
  if (options.log_format == "json") log::set_format(log::Format::json);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  signals::restore_default_actions();  // until the models are ready, a stop signal ends em-serve at once
  // A folder that is not a model fails now, before the port is taken (loading it fully comes after the bind).
  for (const auto& spec : specs) models::algo_of_model_dir(spec.dir);

  // A request waiting for its model holds a request thread; once every thread waits, a 503 for a full queue (or
  // anything else with a body) waits for a free thread too: load shedding needs threads to spare.
  const int64_t waiting = static_cast<int64_t>(specs.size()) *
                          (options.batching.max_queue_images + options.batching.max_batch_size);
  if (options.batching.max_queue_images > 0 && waiting >= options.http_threads)
    log::warn("--http_threads {}: fewer than the requests that can wait for the models ({} model(s) x "
              "(--max_queue_images {} + --batch_size {})); under overload a 503 then waits for a free thread: raise "
              "--http_threads above {} or lower --max_queue_images",
              options.http_threads, specs.size(), options.batching.max_queue_images, options.batching.max_batch_size,
              waiting);
  ModelSet models(specs, options.service_options());
  HttpServer server(models, options);
  const int port = server.bind();
  const std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  const std::string address = fmt::format("http://{}:{}", host, port);
  log::info("bound {}: live (GET /v2/health/live), loading {}", address,
            count_of(static_cast<int64_t>(specs.size()), "model"));

  // The models load on their own thread while the server answers probes (503 "loading" for predictions). From
  // ready on, a stop signal is cooperative: the watcher (ordinary code, unlike the handler) stops the server,
  // whose run() then returns once the requests in flight are answered. A second signal kills (em::signals).
  signals::reset();  // a stop asked of an earlier serve() in this process is not this one's
  signals::StopWatcher watcher([&server](int sig) {
    log::info("{}: stopping: no new connections, finishing the requests in flight (signal again to kill)",
              sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  std::exception_ptr load_error;
  std::thread loader([&] {
    try {
      models.load_all(predict_options);
      signals::install_stop_handlers(nullptr);
      // Always printed (also with --quiet): scripts read the port from it, and from it every model answers.
      log::write(log::Level::info, fmt::format("listening on {}", address));
    } catch (...) {
      load_error = std::current_exception();
      server.stop();
    }
  });
  std::exception_ptr run_error;
  try {
    server.run();
  } catch (...) {
    run_error = std::current_exception();
  }
  loader.join();
  models.stop();
  if (load_error) std::rethrow_exception(load_error);
  if (run_error) std::rethrow_exception(run_error);
  int64_t requests = 0, images = 0, batches = 0;
  for (const auto& m : models.models()) {
    if (!m->ready) continue;
    const BatcherStats s = m->service->stats();
    requests += s.requests;
    images += s.images;
    batches += s.batches;
  }
  log::info("stopped after {} ({} in {})", count_of(requests, "prediction"), count_of(images, "image"),
            count_of(batches, "forward pass", "forward passes"));
}

}  // namespace em::serve
