// AdamW with exactly torch.optim.AdamW's update (decoupled weight decay, bias corrections, eps after the sqrt), fused into
// one pass over each fp32 parameter's memory; per-group learning-rate scale and weight decay; named, strict state.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/tensor/safetensors.hpp"

namespace em::io {
// The same alias as em/tensor/safetensors.hpp (an identical alias may be declared twice), so this header stays light.
using TensorMap = std::map<std::string, torch::Tensor>;
}  // namespace em::io

namespace em::train {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // used by groups that leave ParamGroup::weight_decay unset
};

// Parameters sharing one learning-rate scale and weight decay (e.g. DETR's backbone at 0.1x, no decay on norms/biases).
struct ParamGroup {
  std::vector<std::string> names;     // one per param: the keys of the optimizer state ("exp_avg.<name>")
  std::vector<torch::Tensor> params;
  double lr_scale = 1.0;              // the group's lr is the base lr (set_lr) times this
  std::optional<double> weight_decay = std::nullopt;  // unset: AdamWOptions::weight_decay
};

class AdamW {
 public:
  // Throws em::Error on names/params of different lengths, a duplicate or empty name, an undefined or non-floating
  // parameter, or an option out of range (lr, eps, weight_decay >= 0; betas in [0, 1)).
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opts);

  // Drops the gradients (torch 2.x's set_to_none): a param that takes no part in the next backward is then skipped.
  void zero_grad();
  // One update of every param that has a gradient (params without one keep their values, state and step count).
  // Gradients are multiplied by grad_scale first, with the bits of grad.mul_(grad_scale): clip_grad_norm_'s scaling
  // without its extra pass over the gradients (see clip_coefficient).
  void step(double grad_scale = 1.0);
  // The base learning rate; each group uses lr * lr_scale. Call before step() with the schedule's value.
  void set_lr(double lr);
  double lr() const { return opts_.lr; }
  // Number of step() calls so far (restored by load_state).
  int64_t step_count() const { return step_count_; }

  // "step" (int64 scalar, = step_count()), and per param "exp_avg.<name>", "exp_avg_sq.<name>", "step.<name>" (int64
  // scalar: torch keeps a step per param, which differs where a param went without a gradient). Contiguous copies, or
  // with copy = false the moments themselves where already contiguous (for writing out at once: the next step()
  // changes them).
  tensor::TensorMap state(bool copy = true) const;
  // All-or-nothing restore from state(): a missing, unknown or wrongly shaped tensor is an em::Error that names it.
  void load_state(const tensor::TensorMap& state);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;  // moments share the param's memory layout (channels_last stays so)
    int64_t step = 0;
    double lr_scale = 1.0;
    double weight_decay = 0.0;
  };
  void update(Slot& slot, const torch::Tensor& raw_grad, double grad_scale);

  AdamWOptions opts_;
  std::vector<Slot> slots_;
  int64_t step_count_ = 0;
};

// Gradient clipping as torch::nn::utils::clip_grad_norm_(params, max_norm) computes it, in two halves: the L2 norm of
// all gradients (what it returns; params without a gradient are skipped) and the factor it multiplies them by,
// min(1, max_norm / (norm + 1e-6)) in the norm's dtype. AdamW::step(clip_coefficient(...)) then equals clip_grad_norm_ followed
// by step(), bit for bit.
torch::Tensor total_grad_norm(const std::vector<torch::Tensor>& params);
double clip_coefficient(const torch::Tensor& total_norm, double max_norm);

}  // namespace em::train
