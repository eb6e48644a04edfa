// em-serve's whole job: load the model, bind, log "listening on http://HOST:PORT", serve until SIGINT/SIGTERM
// (em/core/signals.hpp), then finish the requests in flight and return.
#pragma once
#include <string>

#include "em/infer/predictor.hpp"
#include "em/serve/http_server.hpp"

namespace em::serve {

// Stop signals follow em::signals: before the model is loaded a signal has its default action (the process ends at
// once); while serving, the first one stops accepting and lets the requests in flight finish, a second one kills.
void serve(const std::string& model_dir, const infer::PredictOptions& predict_options, const ServeOptions& options);

}  // namespace em::serve
