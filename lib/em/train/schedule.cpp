#include "em/train/schedule.hpp"

#include "em/core/error.hpp"

#include <algorithm>
#include <cmath>

namespace em::train {

ScheduleType parse_schedule_type(const std::string& name) {
  if (name == "linear") return ScheduleType::linear;
  if (name == "cosine") return ScheduleType::cosine;
  if (name == "constant") return ScheduleType::constant;
  if (name == "constant_with_warmup") return ScheduleType::constant_with_warmup;
  usage_fail("lr_scheduler_type: unknown schedule '{}' (expected linear, cosine, constant or constant_with_warmup)",
             name);
}

std::string to_string(ScheduleType type) {
  switch (type) {
    case ScheduleType::linear: return "linear";
    case ScheduleType::cosine: return "cosine";
    case ScheduleType::constant: return "constant";
    case ScheduleType::constant_with_warmup: return "constant_with_warmup";
  }
  return "linear";
}

// Transcribed from transformers/optimization.py (_get_linear_schedule_with_warmup_lr_lambda,
// _get_cosine_schedule_with_warmup_lr_lambda with num_cycles = 0.5, _get_constant_schedule_with_warmup_lr_lambda).
// Python's int / int is true division, hence the doubles; max(1, ...) guards a zero-length phase as HF does.
double lr_multiplier(ScheduleType type, int64_t step, int64_t total_steps, int64_t warmup_steps) {
  if (type == ScheduleType::constant) return 1.0;
  auto s = static_cast<double>(step);
  auto warmup = static_cast<double>(warmup_steps);
  auto total = static_cast<double>(total_steps);
  if (step < warmup_steps) return s / std::max(1.0, warmup);
  switch (type) {
    case ScheduleType::linear: return std::max(0.0, (total - s) / std::max(1.0, total - warmup));
    case ScheduleType::cosine: {
      constexpr double kNumCycles = 0.5;
      constexpr double kPi = 3.14159265358979323846;
      double progress = (s - warmup) / std::max(1.0, total - warmup);
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * kNumCycles * 2.0 * progress)));
    }
    default: return 1.0;
  }
}

}  // namespace em::train
