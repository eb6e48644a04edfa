// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler: the loss is multiplied by a large scale so
// that fp16 gradients do not underflow; the gradients are divided back before the optimizer sees them, a step whose
// gradients overflowed (inf/nan) is skipped and the scale halves; after growth_interval clean steps it doubles.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/io/json.hpp"

namespace em::train {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // false: scale() and unscale_() change nothing and every step runs (bf16 / fp32 training)
  // em::UsageError naming the field when a value is out of range (init_scale > 0, growth_factor > 1,
  // backoff_factor in (0, 1), growth_interval >= 1).
  void validate() const;
};

// One step: loss' = scale(loss); loss'.backward(); [unscale_(params); clip]; step(params, optimizer step); update().
// Tensors are device-generic (the checks run where the gradients are), so the CPU tests run the CUDA path. Under
// data-parallel training call unscale_ after the gradients are all-reduced: every rank then sees the same inf/nan
// and skips the same steps.
class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  bool enabled() const { return options_.enabled; }
  // loss * the current scale (loss itself when disabled).
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Divides every defined gradient of `params` by the scale, in place, and returns whether all are finite. Once per
  // step: a second call before update() changes nothing and returns the first answer (so clipping can unscale
  // first and step() after). Disabled: returns true.
  bool unscale_(const std::vector<torch::Tensor>& params);
  // unscale_(params) unless done this step, then optimizer_step() when the gradients are finite; returns whether
  // it ran (false = the step is skipped: the weights and the optimizer state stay as they were).
  bool step(const std::vector<torch::Tensor>& params, const std::function<void()>& optimizer_step);
  // Ends the step: after an inf/nan the scale times backoff_factor and the clean-step count restarts; after
  // growth_interval clean steps in a row the scale times growth_factor.
  void update();

  double get_scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  // Steps skipped so far (inf/nan gradients), for logs.
  int64_t skipped_steps() const { return skipped_steps_; }

  // torch's GradScaler.state_dict(): {"scale", "growth_factor", "backoff_factor", "growth_interval",
  // "_growth_tracker"} (an empty object when disabled), for checkpoints.
  io::Json state() const;
  // Restores state(); em::Error naming `what` (the checkpoint file) and the field when one is missing or invalid.
  // An empty object (a checkpoint of a run without scaling) keeps the current state.
  void load_state(const io::Json& state, const std::string& what);

 private:
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_steps_ = 0;
  enum class Stage { ready, unscaled } stage_ = Stage::ready;
  bool found_inf_ = false;
};

}  // namespace em::train
