// Learning-rate schedules with the names and exact formulas of HF transformers' get_scheduler (lr_scheduler_type).
// lr_at(type, base, k, ...) is the rate optimizer step k (0-based) uses: HF steps its LambdaLR after each optimizer step.
#pragma once
#include <cstdint>
#include <string>

namespace em::train {

enum class ScheduleType { linear, cosine, constant, constant_with_warmup };

// "linear", "cosine", "constant", "constant_with_warmup" (HF SchedulerType values). Anything else: em::UsageError naming
// lr_scheduler_type, the value and the accepted names.
ScheduleType parse_schedule_type(const std::string& name);
std::string to_string(ScheduleType type);

// HF's lr_lambda(step) (the multiplier of base_lr):
//   warmup (all but constant): step / max(1, warmup_steps) while step < warmup_steps
//   linear:   max(0, (total_steps - step) / max(1, total_steps - warmup_steps))
//   cosine:   max(0, 0.5 * (1 + cos(pi * progress))), progress = (step - warmup) / max(1, total - warmup)
//   constant / constant_with_warmup: 1
double lr_multiplier(ScheduleType type, int64_t step, int64_t total_steps, int64_t warmup_steps);
inline double lr_at(ScheduleType type, double base_lr, int64_t step, int64_t total_steps, int64_t warmup_steps) {
  return base_lr * lr_multiplier(type, step, total_steps, warmup_steps);
}

}  // namespace em::train
