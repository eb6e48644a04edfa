// The models one em-serve process serves (--model [NAME=]DIR, repeated): their names, their loading in the
// background while the server already answers liveness probes, and readiness (every model loaded and warmed up).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "em/infer/predictor.hpp"
#include "em/serve/memory_budget.hpp"
#include "em/serve/service.hpp"

namespace em::serve {

struct ModelSpec {
  std::string name;  // in routes: /v1/models/NAME:predict
  std::string dir;
};
// "NAME=DIR", or "DIR" named after its folder (runs/cls/model -> "model"). em::UsageError for an empty part or a
// name outside [A-Za-z0-9_.-] (1 to 128 characters, not starting with '.').
ModelSpec parse_model_spec(const std::string& arg);
// Each --model; em::UsageError when two get the same name (naming both folders).
std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& args);

class ModelSet {
 public:
  // Nothing is loaded yet. `specs` must not be empty; the first is the default model (POST /inference).
  ModelSet(std::vector<ModelSpec> specs, ServiceOptions options);
  ~ModelSet();
  ModelSet(const ModelSet&) = delete;
  ModelSet& operator=(const ModelSet&) = delete;

  // Loads each model in order and runs one warm-up forward pass on it; each becomes usable as soon as it is warm.
  // Throws what loading throws (the caller stops the server).
  void load_all(const infer::PredictOptions& predict_options);

  struct Model {
    ModelSpec spec;
    std::unique_ptr<InferenceService> service;  // set once, before `ready`
    std::atomic<bool> ready{false};
    double load_seconds = 0;  // loading + warm-up; written before `ready`
  };
  const std::vector<std::unique_ptr<Model>>& models() const { return models_; }
  const Model* find(const std::string& name) const;  // null for an unknown name
  const Model& default_model() const { return *models_.front(); }
  // A served model (ready), or null: unknown or still loading.
  InferenceService* service(const std::string& name) const;
  bool ready() const;  // every model
  std::vector<std::string> names() const;
  // Every loaded model answers what it has queued, then stops.
  void stop();

 private:
  void publish(Model& model, std::unique_ptr<infer::Predictor> predictor, double seconds_so_far);
  std::vector<std::unique_ptr<Model>> models_;
  ServiceOptions options_;
  MemoryBudget budget_;  // images in flight, for every model together
};

}  // namespace em::serve
