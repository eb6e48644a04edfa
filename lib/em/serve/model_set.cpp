#include "em/serve/model_set.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace em::serve {

namespace {
bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}
}  // namespace

ModelSpec parse_model_spec(const std::string& arg) {
  ModelSpec spec;
  const size_t eq = arg.find('=');
  if (eq != std::string::npos) {
    spec.name = arg.substr(0, eq);
    spec.dir = arg.substr(eq + 1);
    if (spec.dir.empty()) usage_fail("--model {}: no folder after '=' (NAME=DIR)", arg);
  } else {
    spec.dir = arg;
    std::filesystem::path p(arg);
    if (!p.has_filename()) p = p.parent_path();  // "runs/cls/model/"
    spec.name = p.filename().string();
    if (spec.name == "." || spec.name == "..") spec.name = std::filesystem::weakly_canonical(p).filename().string();
  }
  if (spec.dir.empty()) usage_fail("--model: empty; give a model folder (DIR or NAME=DIR)");
  if (!valid_name(spec.name))
    usage_fail("--model {}: model name \"{}\" must be 1 to 128 of the characters A-Z a-z 0-9 _ . - (not starting "
               "with '.'); name it with NAME=DIR",
               arg, spec.name);
  return spec;
}

std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& args) {
  if (args.empty()) usage_fail("--model: required (DIR, or NAME=DIR once per model)");
  std::vector<ModelSpec> specs;
  for (const auto& arg : args) {
    ModelSpec spec = parse_model_spec(arg);
    for (const auto& other : specs)
      if (other.name == spec.name)
        usage_fail("--model: two models named \"{}\" ({} and {}); name them with NAME=DIR", spec.name, other.dir,
                   spec.dir);
    specs.push_back(std::move(spec));
  }
  return specs;
}

ModelSet::ModelSet(std::vector<ModelSpec> specs, ServiceOptions options)
    : options_(options), budget_(options.memory.in_flight_mb << 20) {
  if (specs.empty()) usage_fail("--model: required (DIR, or NAME=DIR once per model)");
  options_.validate();
  for (auto& spec : specs) {
    auto m = std::make_unique<Model>();
    m->spec = std::move(spec);
    models_.push_back(std::move(m));
  }
}

ModelSet::~ModelSet() { stop(); }

void ModelSet::publish(Model& model, std::unique_ptr<infer::Predictor> predictor, double seconds_so_far) {
  const auto t0 = std::chrono::steady_clock::now();
  auto service = std::make_unique<InferenceService>(std::move(predictor), model.spec.dir, options_, &budget_);
  service->warm_up();
  model.load_seconds = seconds_so_far + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  model.service = std::move(service);
  model.ready.store(true, std::memory_order_release);
}

void ModelSet::load_all(const infer::PredictOptions& predict_options) {
  // A test seam, not a setting: stretches each load so that tests can watch a server that is live but not ready.
  const char* delay = std::getenv("EM_TEST_SERVE_LOAD_DELAY_MS");
  for (auto& m : models_) {
    const auto t0 = std::chrono::steady_clock::now();
    if (delay) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
    auto predictor = infer::Predictor::load(m->spec.dir, predict_options);
    publish(*m, std::move(predictor), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    log::info("model \"{}\": {} ({}) loaded and warmed up in {:.1f} s", m->spec.name, m->spec.dir,
              algo_name(m->service->predictor().algo()), m->load_seconds);
  }
}

const ModelSet::Model* ModelSet::find(const std::string& name) const {
  for (const auto& m : models_)
    if (m->spec.name == name) return m.get();
  return nullptr;
}

InferenceService* ModelSet::service(const std::string& name) const {
  const Model* m = find(name);
  return m && m->ready.load(std::memory_order_acquire) ? m->service.get() : nullptr;
}

bool ModelSet::ready() const {
  for (const auto& m : models_)
    if (!m->ready.load(std::memory_order_acquire)) return false;
  return true;
}

std::vector<std::string> ModelSet::names() const {
  std::vector<std::string> out;
  for (const auto& m : models_) out.push_back(m->spec.name);
  return out;
}

void ModelSet::stop() {
  for (auto& m : models_)
    if (m->ready.load(std::memory_order_acquire)) m->service->stop();
}

}  // namespace em::serve
