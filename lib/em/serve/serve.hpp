// em-serve's whole job: bind, answer liveness probes while the models load and warm up, log "listening on
// http://HOST:PORT" once every model is ready, serve until SIGINT/SIGTERM (em/core/signals.hpp), then finish the
// requests in flight and return.
#pragma once
#include <string>
#include <vector>

#include "em/infer/predictor.hpp"
#include "em/serve/http_server.hpp"
#include "em/serve/model_set.hpp"

namespace em::serve {

// Stop signals follow em::signals: until every model is ready a signal has its default action (the process ends at
// once); while serving, the first one stops accepting and lets the requests in flight finish, a second one kills.
// A model that fails to load stops the server and its error is thrown from here.
void serve(const std::vector<ModelSpec>& models, const infer::PredictOptions& predict_options,
           const ServeOptions& options);

}  // namespace em::serve
