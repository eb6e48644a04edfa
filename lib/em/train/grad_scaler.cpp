#include "em/train/grad_scaler.hpp"

#include <cmath>

#include "em/core/error.hpp"

namespace em::train {

void GradScalerOptions::validate() const {
  if (!(init_scale > 0) || !std::isfinite(init_scale))
    usage_fail("grad scaler: init_scale must be a finite number > 0, got {}", init_scale);
  if (!(growth_factor > 1) || !std::isfinite(growth_factor))
    usage_fail("grad scaler: growth_factor must be > 1, got {}", growth_factor);
  if (!(backoff_factor > 0 && backoff_factor < 1))
    usage_fail("grad scaler: backoff_factor must be in (0, 1), got {}", backoff_factor);
  if (growth_interval < 1) usage_fail("grad scaler: growth_interval must be >= 1, got {}", growth_interval);
}

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  options_.validate();
}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) const {
  return options_.enabled ? loss * scale_ : loss;
}

bool GradScaler::unscale_(const std::vector<torch::Tensor>& params) {
  if (!options_.enabled) return true;
  if (stage_ == Stage::unscaled) return !found_inf_;
  torch::NoGradGuard no_grad;
  const double inv_scale = 1.0 / scale_;  // exact: the scale stays a power of two with the default factors
  torch::Tensor any_bad;  // one flag on the gradients' device: a single host sync at the end, not one per tensor
  for (const auto& p : params) {
    torch::Tensor g = p.grad();
    if (!g.defined()) continue;
    g.mul_(inv_scale);
    torch::Tensor bad = torch::isfinite(g).all().logical_not();
    any_bad = any_bad.defined() ? any_bad.logical_or(bad.to(any_bad.device())) : bad;
  }
  found_inf_ = any_bad.defined() && any_bad.item<bool>();
  stage_ = Stage::unscaled;
  return !found_inf_;
}

bool GradScaler::step(const std::vector<torch::Tensor>& params, const std::function<void()>& optimizer_step) {
  if (!unscale_(params)) {
    ++skipped_steps_;
    return false;
  }
  optimizer_step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  if (found_inf_) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    // As torch's _amp_update_scale_: grow only to a finite scale.
    if (std::isfinite(scale_ * options_.growth_factor)) scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
  stage_ = Stage::ready;
  found_inf_ = false;
}

io::Json GradScaler::state() const {
  if (!options_.enabled) return io::Json::object();
  return {{"scale", scale_},
          {"growth_factor", options_.growth_factor},
          {"backoff_factor", options_.backoff_factor},
          {"growth_interval", options_.growth_interval},
          {"_growth_tracker", growth_tracker_}};
}

void GradScaler::load_state(const io::Json& state, const std::string& what) {
  if (!state.is_object()) fail_at(what, "grad scaler state: expected a JSON object, got {}", io::dump_json(state));
  if (state.empty()) return;
  auto number = [&](const char* key) {
    const io::Json& v = io::require_field(state, key, what);
    if (!v.is_number()) fail_at(what, "grad scaler state: field \"{}\": expected a number, got {}", key, io::dump_json(v));
    return v.get<double>();
  };
  auto whole = [&](const char* key) {
    const io::Json& v = io::require_field(state, key, what);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      fail_at(what, "grad scaler state: field \"{}\": expected a whole number >= 0, got {}", key, io::dump_json(v));
    return v.get<int64_t>();
  };
  GradScalerOptions options = options_;
  options.init_scale = number("scale");
  if (!(options.init_scale > 0) || !std::isfinite(options.init_scale))
    fail_at(what, "grad scaler state: field \"scale\": expected a finite number > 0, got {}", options.init_scale);
  options.growth_factor = number("growth_factor");
  options.backoff_factor = number("backoff_factor");
  options.growth_interval = whole("growth_interval");
  const int64_t tracker = whole("_growth_tracker");
  try {
    options.validate();
  } catch (const UsageError& e) {
    fail_at(what, "{}", e.what());
  }
  options_.growth_factor = options.growth_factor;
  options_.backoff_factor = options.backoff_factor;
  options_.growth_interval = options.growth_interval;
  scale_ = options.init_scale;
  growth_tracker_ = tracker;
  stage_ = Stage::ready;
  found_inf_ = false;
}

}  // namespace em::train
