#include "em/serve/serve.hpp"

#include "em/core/plural.hpp"

#include "em/core/log.hpp"
#include "em/core/signals.hpp"

#include <chrono>
#include <csignal>

namespace em::serve {

void serve(const std::string& model_dir, const infer::PredictOptions& predict_options, const ServeOptions& options) {
  options.validate();
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  signals::restore_default_actions();  // until the server listens, a stop signal ends em-serve at once

  const auto t0 = std::chrono::steady_clock::now();
  auto predictor = infer::Predictor::load(model_dir, predict_options);
  log::info("loaded {} ({}) in {:.1f} s", model_dir, algo_name(predictor->algo()),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  InferenceService service(std::move(predictor), model_dir, options.batching, options.memory);
  HttpServer server(service, options);
  const int port = server.bind();

  // From here a stop signal is cooperative: the watcher (ordinary code, unlike the handler) stops the server,
  // whose run() then returns once the requests in flight are answered. A second signal kills (em::signals).
  signals::reset();  // a stop asked of an earlier serve() in this process is not this one's
  signals::install_stop_handlers(nullptr);
  signals::StopWatcher watcher([&server](int sig) {
    log::info("{}: stopping: no new connections, finishing the requests in flight (signal again to kill)",
              sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  const std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  // Always printed (also with --quiet): scripts read the port from it when they asked for port 0.
  log::write(log::Level::info, fmt::format("listening on http://{}:{}", host, port));
  server.run();
  service.stop();
  const BatcherStats stats = service.stats();
  log::info("stopped after {} ({} in {})", count_of(stats.requests, "prediction"), count_of(stats.images, "image"),
            count_of(stats.batches, "forward pass", "forward passes"));
}

}  // namespace em::serve
