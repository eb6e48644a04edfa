#include "em/train/trainer.hpp"

#include "em/core/error.hpp"
#include "em/core/plural.hpp"
#include "em/core/log.hpp"
#include "em/core/signals.hpp"
#include "em/data/sampling.hpp"
#include "em/dist/sync_batchnorm.hpp"
#include "em/tensor/autocast.hpp"
#include "em/tensor/device.hpp"
#include "em/tensor/loader.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/ranges.h>

namespace em::train {
namespace fs = std::filesystem;

namespace {

int64_t batches_per_epoch(int64_t train_size, int64_t global_batch) {
  return (train_size + global_batch - 1) / global_batch;
}

// The step counts of a fresh run, as HF Trainer's set_initial_training_values: an optimizer step per
// gradient_accumulation_steps batches, the epoch's last step on the batches left (ceil); max_steps > 0 sets the total,
// else num_train_epochs does (the last epoch may be a fraction: 2.5), at least one step.
TrainerState initial_state(int64_t train_size, int64_t global_batch, const Hyperparameters& hp) {
  TrainerState state;
  const int64_t batches = batches_per_epoch(train_size, global_batch);
  state.gradient_accumulation_steps = hp.gradient_accumulation_steps;
  state.steps_per_epoch =
      std::max<int64_t>(1, (batches + hp.gradient_accumulation_steps - 1) / hp.gradient_accumulation_steps);
  state.total_steps = hp.max_steps > 0
                          ? hp.max_steps
                          : static_cast<int64_t>(std::ceil(hp.num_train_epochs * state.steps_per_epoch - 1e-9));
  if (state.total_steps < 1) state.total_steps = 1;
  return state;
}

// metric_for_best_model against the metrics the task's evaluations log, when it declares them: a usage error before
// anything is written, naming them (HF raises its KeyError at the first evaluation).
std::string checked_best_metric_key(const std::vector<std::string>& names, const Hyperparameters& hp) {
  const std::string key = hp.best_metric_key();
  if (!names.empty() && std::find(names.begin(), names.end(), key) == names.end()) {
    std::vector<std::string> keys;
    for (const auto& n : names) keys.push_back("eval_" + n);
    usage_fail("hyperparameter metric_for_best_model: '{}' is not a metric that {} evaluations log (they log {}; "
               "the eval_ prefix is optional)",
               hp.metric_for_best_model, algo_name(hp.algo), fmt::join(keys, ", "));
  }
  return key;
}

AdamWOptions adamw_options(const Hyperparameters& hp) {
  AdamWOptions adam;
  adam.lr = hp.learning_rate;
  adam.weight_decay = hp.weight_decay;
  return adam;
}

// The models' BatchNorm layers reduce their statistics over the group while the trainer lives.
void enable_sync_batchnorm(dist::Group& group) {
  dist::set_sync_batchnorm([&group](torch::Tensor& t) { group.all_reduce_sum(t); });
}

std::vector<torch::Tensor> trained_parameters(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// fp16 cannot run on the CPU and not together with bf16: em::UsageError before anything is written.
GradScalerOptions scaler_options(const TrainOptions& opts, torch::nn::Module& model) {
  tensor::check_precision(tensor::precision_of_flags(opts.hp.bf16, opts.hp.fp16), tensor::device_of(model));
  GradScalerOptions o = opts.grad_scaler;
  if (opts.hp.fp16) o.enabled = true;
  return o;
}

}  // namespace

namespace {
// What hyperparameters.json holds: the hyperparameters and the compute threads, not a hyperparameter but what an
// exact resume needs too (LibTorch's reductions split by thread); a run resumed without --threads takes the
// checkpoint's (tools/common/train_flags.cpp).
io::Json saved_settings(const Hyperparameters& hp) {
  io::Json j = hp.to_json();
  j["threads"] = torch::get_num_threads();
  return j;
}
}  // namespace

Trainer::Trainer(Task& task, const TrainOptions& opts, dist::Group* group, bool writer)
    : own_group_(group ? nullptr : std::make_unique<dist::Group>()),
      group_(group ? *group : *own_group_),
      task_(task),
      opts_(opts),
      hp_(opts_.hp),
      metric_names_(task.metric_names()),
      best_key_(checked_best_metric_key(metric_names_, hp_)),
      best_greater_(hp_.best_metric_greater()),
      scaler_(scaler_options(opts_, task.model())),
      run_(opts_.output_dir, opts_.overwrite_output_dir, opts_.resume_from_checkpoint.has_value(),
           writer && group_.rank() == 0),
      train_size_(task.train_size()),
      batch_size_(hp_.per_device_train_batch_size),
      global_batch_(batch_size_ * group_.size()),
      accumulation_(hp_.gradient_accumulation_steps),
      batches_per_epoch_(batches_per_epoch(train_size_, global_batch_)),
      state_(initial_state(train_size_, global_batch_, hp_)),
      warmup_steps_(static_cast<int64_t>(std::ceil(hp_.warmup_ratio * state_.total_steps))),
      schedule_(parse_schedule_type(hp_.lr_scheduler_type)),
      eval_every_(hp_.eval_interval()),
      optimizer_(task.param_groups(hp_.weight_decay), adamw_options(hp_)),
      hp_json_(saved_settings(hp_)),
      trained_(trained_parameters(task.model())) {
  state_.world_size = group_.size();
  state_.global_batch_size = global_batch_;
  const bool resuming = opts_.resume_from_checkpoint.has_value();
  if (resuming) resume(run_.resume_point(*opts_.resume_from_checkpoint));
  run_.open_logs(hp_json_, resuming ? state_.global_step : -1, state_.global_step);
  // One process runs the same BatchNorm code (its all-reduce is the identity), so N x B and 1 x N·B compute alike.
  if (hp_.sync_batchnorm) enable_sync_batchnorm(group_);
  if (!group_.single()) sync_start();
}

Trainer::~Trainer() {
  if (hp_.sync_batchnorm) dist::clear_sync_batchnorm();
}

// Data-parallel start: every rank begins from rank 0's weights and buffers (as DDP's constructor does), and gradients
// are reduced from now on.
void Trainer::sync_start() {
  std::vector<torch::Tensor> state;
  for (const auto& p : task_.model().parameters()) state.push_back(p);
  for (const auto& b : task_.model().buffers()) state.push_back(b);
  dist::broadcast_from_rank0(group_, state);
  reducer_ = std::make_unique<dist::GradientReducer>(group_, trained_);
  task_.set_group(&group_);
  log::info("data-parallel: {} processes x batch {} = {} images per step; gradients in {}{}", group_.size(),
            batch_size_, global_batch_, count_of(static_cast<int64_t>(reducer_->num_buckets()), "bucket"),
            hp_.sync_batchnorm ? ", BatchNorm synchronised" : "");
}

// Without sync_batchnorm each rank's BatchNorm keeps its own running statistics; as DDP (broadcast_buffers), rank 0's
// are copied to every rank before each forward, so the model that rank 0 saves and evaluates is the one every rank runs.
void Trainer::sync_buffers() {
  if (group_.single() || hp_.sync_batchnorm) return;
  std::vector<torch::Tensor> buffers;
  for (const auto& b : task_.model().buffers()) buffers.push_back(b);
  dist::broadcast_from_rank0(group_, buffers);
}

void Trainer::resume(const fs::path& dir) {
  io::Json saved_hp = io::read_json_file((dir / run_dir::kHyperparameters).string());
  for (const char* key : {"seed", "num_train_epochs", "learning_rate", "threads"})
    if (saved_hp.contains(key) && saved_hp[key] != hp_json_[key])
      log::warn("resuming with {} = {} but the checkpoint was trained with {}: the result will differ from an "
                "uninterrupted run",
                key, io::dump_json(hp_json_[key]), io::dump_json(saved_hp[key]));
  TrainerState saved = load_checkpoint(dir, task_, optimizer_);
  // The loss scale goes on from where it was (a checkpoint without one, e.g. of a bf16 run, keeps the initial scale).
  scaler_.load_state(saved.grad_scaler, (dir / run_dir::kTrainerState).string());
  if (saved.global_batch_size == 0 && saved_hp.contains("per_device_train_batch_size"))
    saved.global_batch_size = saved_hp["per_device_train_batch_size"].get<int64_t>();  // one process then
  const bool same_step_size =
      saved.global_batch_size * saved.gradient_accumulation_steps == global_batch_ * accumulation_;
  convert_position(saved);
  if (saved.steps_per_epoch != state_.steps_per_epoch && same_step_size)
    log::warn("the dataset or batch size changed since {}: {} steps per epoch now, {} then", dir.string(),
              state_.steps_per_epoch, saved.steps_per_epoch);
  // This run's step counts (from its dataset and hyperparameters) win over the checkpoint's.
  saved.total_steps = state_.total_steps;
  saved.steps_per_epoch = state_.steps_per_epoch;
  saved.world_size = state_.world_size;
  saved.global_batch_size = state_.global_batch_size;
  saved.gradient_accumulation_steps = state_.gradient_accumulation_steps;
  state_ = std::move(saved);
  last_saved_step_ = state_.global_step;
  log::info("resuming from {} (step {} of {})", dir.string(), state_.global_step, state_.total_steps);
}

// A checkpoint whose optimizer steps took another number of images (another number of processes, batch per process
// or gradient_accumulation_steps) resumes at the same sample position: the same epoch, and as many of its images as
// were already trained on (rounded down to a whole step of this run, so at most a step's worth of images are seen
// again).
void Trainer::convert_position(TrainerState& saved) const {
  const int64_t saved_step_images = saved.global_batch_size * saved.gradient_accumulation_steps;
  const int64_t step_images = global_batch_ * accumulation_;
  if (saved.global_batch_size <= 0 || saved_step_images == step_images || saved.steps_per_epoch <= 0) return;
  const int64_t epoch = saved.global_step / saved.steps_per_epoch;
  const int64_t seen = std::min(train_size_, (saved.global_step % saved.steps_per_epoch) * saved_step_images);
  const int64_t step = epoch * state_.steps_per_epoch + seen / step_images;
  // The accumulation is named only where one of the two runs accumulates.
  const bool accumulating = saved.gradient_accumulation_steps != 1 || accumulation_ != 1;
  auto accumulated = [&](int64_t n) { return accumulating ? fmt::format(" x {} accumulated", n) : std::string(); };
  log::info("the checkpoint was trained by {} x batch {}{}, this run is {} x batch {}{}: step {} (epoch {}, {} of its "
            "images) continues as step {}",
            count_of(saved.world_size, "process", "processes"),
            saved.global_batch_size / std::max<int64_t>(1, saved.world_size),
            accumulated(saved.gradient_accumulation_steps), count_of(group_.size(), "process", "processes"),
            batch_size_, accumulated(accumulation_), saved.global_step, epoch, seen, step);
  if (seen % step_images != 0)
    log::warn("{} images of epoch {} are trained on again: an optimizer step took {} images, now {}",
              seen % step_images, epoch, saved_step_images, step_images);
  saved.global_step = step;
}

TrainResult Trainer::run() {
  log::info("training {}, {} ({} per epoch, batch {}{}), {}", count_of(train_size_, "image"),
            count_of(state_.total_steps, "step"), state_.steps_per_epoch, global_batch_,
            accumulation_ > 1 ? fmt::format(" x {} accumulated", accumulation_) : std::string(),
            count_of(torch::get_num_threads(), "thread"));
  progress_.emplace("train", state_.total_steps, "step");
  progress_->start_at(state_.global_step);  // a resumed run's line starts where it is
  clock_ = Stopwatch{};
  since_step_ = Stopwatch{};
  task_.model().train();
  while (state_.global_step < state_.total_steps && !stop_early_) run_epoch();
  progress_->finish();
  save_final_model();
  TrainResult result = finish();
  group_.barrier();  // every rank ends when rank 0 has written the model and results
  return result;
}

// The rest of the current epoch (all of it, unless resuming mid-epoch): the epoch's permutation of the dataset
// (from seed and epoch alone, so a resumed run sees the same batches), batched and prefetched by worker threads.
// Optimizer step k of the epoch trains on batches [k N, min((k + 1) N, batches)) with N = gradient_accumulation_steps:
// the epoch's last step takes the batches left, as HF Trainer's loop does.
void Trainer::run_epoch() {
  const int64_t epoch_index = state_.global_step / state_.steps_per_epoch;
  const int64_t first_step = state_.global_step % state_.steps_per_epoch;
  const int64_t end_step = std::min(state_.steps_per_epoch, state_.total_steps - epoch_index * state_.steps_per_epoch);
  const int64_t first = first_step * accumulation_, end = std::min(batches_per_epoch_, end_step * accumulation_);
  const std::vector<int64_t> order =
      data::epoch_permutation(train_size_, static_cast<uint64_t>(hp_.seed), epoch_index);
  tensor::PrefetchLoader loader(
      static_cast<size_t>(end - first),
      [&, epoch_index, first](size_t b) {
        return task_.train_batch(local_indices(order, first + static_cast<int64_t>(b)), epoch_index);
      },
      static_cast<int>(hp_.num_workers), std::max<int>(2, static_cast<int>(hp_.num_workers) * 2),
      tensor::pin_memory_available(tensor::device_of(task_.model())));
  int64_t batch_in_epoch = first;
  while (auto batch = loader.next()) {
    const int64_t step_first = batch_in_epoch / accumulation_ * accumulation_;
    const int64_t batches_in_step = std::min(accumulation_, batches_per_epoch_ - step_first);
    const bool last_of_step = batch_in_epoch + 1 == step_first + batches_in_step;
    accumulate(*batch, batch_in_epoch, batches_in_step, last_of_step);
    ++batch_in_epoch;
    if (!last_of_step) continue;
    optimizer_step();
    after_step();
    if (stop_early_) break;
  }
}

// Global batch `batch_in_epoch` is positions [b * G, min(N, (b + 1) * G)) of the epoch's permutation; this
// rank takes positions rank, rank + W, ... of it (DistributedSampler's interleaving), so the union over ranks is the
// batch a single process with batch G trains on. A last batch of fewer than W images gives each rank without one a
// repeat of the batch's first images (DistributedSampler pads the same way).
std::vector<int64_t> Trainer::local_indices(const std::vector<int64_t>& order, int64_t batch_in_epoch) const {
  const int64_t from = batch_in_epoch * global_batch_, to = std::min(train_size_, from + global_batch_);
  const int64_t rank = group_.rank(), world = group_.size();
  std::vector<int64_t> indices;
  for (int64_t pos = from + rank; pos < to; pos += world) indices.push_back(order[static_cast<size_t>(pos)]);
  if (indices.empty()) indices.push_back(order[static_cast<size_t>(from + rank % (to - from))]);
  return indices;
}

// This rank's share of the global batch relative to an equal share: its loss (a mean over its images) is scaled by
// it, so that the mean of the ranks' gradients is the gradient of the mean loss over the global batch.
double Trainer::share_weight(int64_t batch_in_epoch, int64_t* share) const {
  const int64_t from = batch_in_epoch * global_batch_, len = std::min(train_size_, from + global_batch_) - from;
  const int64_t rank = group_.rank(), world = group_.size();
  const int64_t mine = rank < len ? (len - rank + world - 1) / world : 1;
  if (share) *share = mine;
  return static_cast<double>(mine * world) / static_cast<double>(std::max(len, world));
}

void Trainer::accumulate(const tensor::Batch& batch, int64_t batch_in_epoch, int64_t batches_in_step,
                         bool last_of_step) {
  sync_buffers();
  LossOutput out;
  {
    // The model's device: batches are moved there (the identity on the CPU), autocast is that device's.
    const torch::Device device = tensor::device_of(task_.model());
    tensor::Autocast autocast(tensor::precision_of_flags(hp_.bf16, hp_.fp16), device);
    out = task_.loss(tensor::to_device(batch, device));
  }
  int64_t share = 1;
  double weight = share_weight(batch_in_epoch, &share);
  if (task_.loss_normalised_over_ranks()) weight = 1.0;
  // HF Trainer's training_step: each batch's loss divided by the number of batches of this optimizer step (fewer in
  // an epoch's last step), so the step's gradient is that of the mean of their losses.
  weight /= static_cast<double>(batches_in_step);
  // fp16: the loss times the scale, so that small gradients do not underflow (divided back in clip_and_step).
  scaler_.scale(weight == 1.0 ? out.loss : out.loss * weight).backward();
  if (reducer_) {
    reducer_->finish();
    keep_accumulated_gradients(last_of_step);
  }
  const double loss = agree_on_step(out, share, batch.skipped, batch.size());
  skipped_total_ += agreed_skipped_;
  if (skipped_total_ > hp_.max_bad_samples)
    fail("{} unreadable training images (over --max_bad_samples {}); fix or remove them (em-validate lists them)",
         skipped_total_, hp_.max_bad_samples);
  const double n = static_cast<double>(batches_in_step);
  step_loss_ += loss / n;
  for (const auto& [name, value] : out.terms) step_terms_[name] += value / n;
  step_images_ += agreed_images_;
}

// Data-parallel accumulation: the reducer all-reduces each batch's gradients and writes their mean over the ranks
// into .grad, replacing what was there, so the sum of the step's earlier batches is kept aside here and added back
// after its last batch. (One all-reduce per batch: the reducer has no no_sync mode yet.)
void Trainer::keep_accumulated_gradients(bool last_of_step) {
  if (accumulation_ == 1) return;
  torch::NoGradGuard no_grad;
  kept_gradients_.resize(trained_.size());
  for (size_t i = 0; i < trained_.size(); ++i) {
    torch::Tensor p = trained_[i];
    torch::Tensor& kept = kept_gradients_[i];
    if (!last_of_step) {
      if (!p.grad().defined()) continue;
      if (kept.defined())
        kept.add_(p.grad());
      else
        kept = p.grad();
      p.mutable_grad() = torch::Tensor();
    } else if (kept.defined()) {
      if (p.grad().defined())
        p.mutable_grad().add_(kept);
      else
        p.mutable_grad() = kept;
      kept = torch::Tensor();
    }
  }
}

// The step on the accumulated gradients: learning rate of this step, clipping, AdamW; then the step's bookkeeping.
void Trainer::optimizer_step() {
  const double lr = lr_at(schedule_, hp_.learning_rate, state_.global_step, state_.total_steps, warmup_steps_);
  optimizer_.set_lr(lr);
  const double grad_norm = clip_and_step();
  const double loss = step_loss_;
  if (!std::isfinite(loss))
    fail("training diverged: loss is {} at step {}; lower learning_rate (now {}) — the last checkpoint is still in {}",
         loss, state_.global_step + 1, hp_.learning_rate, run_.root().string());
  ++state_.global_step;
  images_stepped_ += step_images_;
  step_seconds_ += since_step_.seconds();
  since_step_ = Stopwatch{};
  // HF's epoch: the batches trained in this epoch over its batches (= global_step / steps_per_epoch without
  // accumulation).
  const int64_t done = state_.global_step - 1, epoch_index = done / state_.steps_per_epoch;
  const int64_t batches_done =
      std::min(batches_per_epoch_, (done % state_.steps_per_epoch + 1) * accumulation_);
  state_.epoch = static_cast<double>(epoch_index * batches_per_epoch_ + batches_done) / batches_per_epoch_;
  state_.window_loss += loss;
  state_.window_steps += 1;
  state_.total_loss += loss;
  // The line shows the logging window's mean so far: at a logging step, the loss metrics.jsonl gets.
  const double window_mean = state_.window_loss / static_cast<double>(state_.window_steps);
  if (state_.global_step % hp_.logging_steps == 0 || state_.global_step == state_.total_steps)
    log_step(lr, grad_norm, step_terms_);
  progress_->update(state_.global_step,
                    fmt::format("epoch {:.2f} loss {:.4f} lr {:.3g} {:.1f} img/s", state_.epoch, window_mean, lr,
                                step_seconds_ > 0 ? images_stepped_ / step_seconds_ : 0.0));
  step_loss_ = 0;
  step_terms_.clear();
  step_images_ = 0;
}

// What every rank must agree on after a step, in one all-reduce: the global mean loss (and loss terms), the images
// trained and skipped, and whether any rank was asked to stop. A single process takes its own values.
double Trainer::agree_on_step(LossOutput& out, int64_t share, int64_t skipped, int64_t images) {
  const double loss = out.loss.item<double>();
  if (group_.single()) {
    agreed_skipped_ = skipped;
    agreed_images_ = images;
    return loss;
  }
  std::vector<double> v{loss * share, static_cast<double>(share), static_cast<double>(skipped),
                        signals::stop_requested() ? 1.0 : 0.0, static_cast<double>(images)};
  for (const auto& [name, value] : out.terms) v.push_back(value * share);
  torch::Tensor t = torch::tensor(v, torch::kFloat64).to(group_.device());
  group_.all_reduce_sum(t);
  t = t.cpu();
  const double* s = t.data_ptr<double>();
  agreed_skipped_ = static_cast<int64_t>(s[2]);
  agreed_images_ = static_cast<int64_t>(s[4]);
  stop_now_ = stop_now_ || s[3] > 0;  // acted on at the end of the optimizer step
  size_t i = 5;
  for (auto& [name, value] : out.terms) value = s[i++] / s[1];
  return s[0] / s[1];
}

// clip_grad_norm_'s scaling happens inside the optimizer's pass over the gradients (same bits, one pass less).
// fp16: the gradients are unscaled first (after the all-reduce, so every rank sees the same inf/nan and skips the
// same steps); a step with an inf or NaN gradient is skipped (weights and AdamW's moments unchanged) and the scale
// backs off, as torch.cuda.amp.GradScaler; HF Trainer logs such a step's grad_norm as nan, so do we.
double Trainer::clip_and_step() {
  if (!scaler_.unscale_(trained_)) {
    scaler_.step(trained_, [] {});  // counts the skip
    optimizer_.zero_grad();
    const double before = scaler_.get_scale();
    scaler_.update();
    log::debug("step {}: gradient overflow under loss scaling, step skipped; loss scale {} -> {}",
               state_.global_step + 1, before, scaler_.get_scale());
    state_.grad_scaler = scaler_.state();
    return std::numeric_limits<double>::quiet_NaN();
  }
  double grad_norm = 0;
  double grad_scale = 1.0;
  if (hp_.max_grad_norm > 0) {
    torch::Tensor norm = total_grad_norm(task_.model().parameters());
    grad_scale = clip_coefficient(norm, hp_.max_grad_norm);
    grad_norm = norm.item<double>();
  }
  optimizer_.step(grad_scale);
  optimizer_.zero_grad();
  scaler_.update();
  state_.grad_scaler = scaler_.state();
  return grad_norm;
}

// The mean loss since the last logged step, with the step's learning rate, gradient norm and the task's loss terms.
void Trainer::log_step(double lr, double grad_norm, const std::map<std::string, double>& terms) {
  const int64_t step = state_.global_step;
  const double mean = state_.window_loss / std::max<int64_t>(1, state_.window_steps);
  io::Json record{{"step", step}, {"epoch", state_.epoch}, {"loss", mean}, {"learning_rate", lr}};
  if (hp_.max_grad_norm > 0) record["grad_norm"] = grad_norm;
  for (const auto& [name, value] : terms) record[name] = value;
  log(record);
  run_.log_scalar("train/loss", mean, step);
  run_.log_scalar("train/learning_rate", lr, step);
  run_.log_scalar("train/epoch", state_.epoch, step);
  for (const auto& [name, value] : terms) run_.log_scalar("train/" + name, value, step);
  run_.flush_scalars();
  state_.window_loss = 0;
  state_.window_steps = 0;
  if (first_logged_loss_ < 0) first_logged_loss_ = mean;
  last_logged_loss_ = mean;
}

void Trainer::after_step() {
  const int64_t step = state_.global_step;
  const bool epoch_end = step % state_.steps_per_epoch == 0 || step == state_.total_steps;
  if ((hp_.eval_strategy == "epoch" && epoch_end) || (eval_every_ > 0 && step % eval_every_ == 0)) evaluate();
  // The last step's checkpoint (and that of a step where early stopping ends the run) is written after the loop, with
  // the final model (sharing its files).
  const bool save = (hp_.save_strategy == "steps" && step % hp_.save_steps == 0) ||
                    (hp_.save_strategy == "epoch" && epoch_end);
  if (save && step < state_.total_steps && !stop_early_) save_checkpoint();
  stop_if_requested();
}

void Trainer::evaluate() {
  sync_buffers();
  EvalOptions eo;
  eo.group = &group_;
  eo.bf16 = hp_.bf16;
  eo.show_progress = false;  // the training progress line is enough
  eo.compute_loss = true;    // eval_loss, as HF Trainer logs at every evaluation
  EvalResult result = task_.evaluate(eo);
  task_.model().train();
  io::Json record{{"step", state_.global_step}, {"epoch", state_.epoch}};
  for (const auto& [name, value] : result.scalars) {
    record["eval_" + name] = value;
    run_.log_scalar("eval/" + name, value, state_.global_step);
  }
  run_.flush_scalars();
  log(record);
  last_eval_ = result.metrics;
  since_step_ = Stopwatch{};
  // The end-of-run health check watches the algorithm's main metric, whatever decides "best".
  auto main = result.scalars.find(task_.main_metric());
  if (main != result.scalars.end() && std::isfinite(main->second)) {
    ++evaluations_;
    last_main_metric_ = main->second;
    const double chance = task_.chance_level();
    if (chance > 0 && main->second <= chance * 1.2) ++evaluations_at_chance_;
  }
  update_best(best_metric_value(result));
}

// metric_for_best_model in this evaluation; NaN when a metric the task declares was not measured this time (a class
// absent from prediction and truth has no IoU). A name the evaluation does not log at all is a usage error here, when
// the task could not say its metrics before training (HF raises its KeyError at this point too).
double Trainer::best_metric_value(const EvalResult& result) const {
  auto it = result.scalars.find(best_key_);
  if (it != result.scalars.end()) return it->second;
  if (std::find(metric_names_.begin(), metric_names_.end(), best_key_) == metric_names_.end()) {
    std::vector<std::string> keys;
    for (const auto& [name, value] : result.scalars) keys.push_back("eval_" + name);
    usage_fail("hyperparameter metric_for_best_model: the evaluation logged no eval_{} (it logged {}; the eval_ "
               "prefix is optional)",
               best_key_, fmt::join(keys, ", "));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// The best model so far (kept with load_best_model_at_end, its checkpoint kept by rotation) and early stopping's count
// of evaluations without improvement, as HF Trainer: EarlyStoppingCallback judges this evaluation against the best
// before it (an improvement beats it by more than early_stopping_threshold in the metric's direction), then
// _determine_best_metric takes any strictly better value as the new best. NaN is never better.
void Trainer::update_best(double value) {
  const auto better = [this](double a, double b) { return best_greater_ ? a > b : a < b; };
  log::info("step {}: eval_{} = {:.4f}", state_.global_step, best_key_, value);
  const bool improved = !state_.has_best || (better(value, state_.best_metric) &&
                                             std::fabs(value - state_.best_metric) > hp_.early_stopping_threshold);
  if (improved)
    state_.evals_without_improvement = 0;
  else
    ++state_.evals_without_improvement;
  if (std::isfinite(value) && (!state_.has_best || better(value, state_.best_metric))) {
    state_.has_best = true;
    state_.best_metric = value;
    state_.best_step = state_.global_step;
    if (hp_.load_best_model_at_end) run_.save_best_model(task_);
  }
  if (hp_.early_stopping_patience > 0 && state_.evals_without_improvement >= hp_.early_stopping_patience) {
    log::info("early stopping: {} without an improvement of eval_{} (best {:.4f} at step {})",
              count_of(state_.evals_without_improvement, "evaluation"), best_key_, state_.best_metric,
              state_.best_step);
    stop_early_ = true;
  }
}

void Trainer::save_checkpoint(const fs::path& model_files) {
  state_.runtime_s += clock_.seconds();
  clock_ = Stopwatch{};
  state_.best_checkpoint_step = best_checkpoint_after_save(run_.root(), state_, state_.global_step);
  run_.save_checkpoint(task_, optimizer_, state_, hp_json_, model_files, hp_.save_total_limit);
  last_saved_step_ = state_.global_step;
  since_step_ = Stopwatch{};
}

// SIGINT/SIGTERM: the step that was running has finished; save it and stop (exit 130 in run_main).
// In a data-parallel run every rank stops after the same step (the flag was agreed in agree_on_step), once rank 0
// has written the checkpoint.
void Trainer::stop_if_requested() {
  if (!(group_.single() ? signals::stop_requested() : stop_now_)) return;
  if (last_saved_step_ != state_.global_step) save_checkpoint();
  progress_->finish();
  group_.barrier();
  if (group_.rank() != 0) throw Interrupted("");  // rank 0 tells; the others just stop (exit 130)
  const std::string by = signals::stop_signal() ? fmt::format("by signal {}", signals::stop_signal())
                                                : std::string("by a signal to another rank");
  throw Interrupted(fmt::format("stopped {} at step {}; continue with --resume_from_checkpoint (checkpoint {})", by,
                                state_.global_step, run_.checkpoint_path(state_.global_step).string()));
}

// The final model: the best evaluated one with load_best_model_at_end, else the last, which the final checkpoint
// (when this step has none yet and save_strategy is not no) shares by hard links instead of a second copy.
void Trainer::save_final_model() {
  const bool checkpoint = hp_.save_strategy != "no" && last_saved_step_ != state_.global_step;
  if (hp_.load_best_model_at_end && run_.has_best_model()) {
    if (checkpoint) save_checkpoint();
    run_.use_best_model_as_final();
    log::info("model/: the best evaluated weights (step {}, eval_{} {:.4f})", state_.best_step, best_key_,
              state_.best_metric);
  } else {
    fs::path staged = run_.stage_final_model(task_);
    if (checkpoint) save_checkpoint(staged);
    run_.publish_final_model(staged);
  }
  // HF Trainer's end of train(): with save_total_limit 1, only the best checkpoint stays.
  if (hp_.save_total_limit == 1 && state_.best_checkpoint_step >= 0)
    run_.keep_only_checkpoint(state_.best_checkpoint_step);
}

// How long finish() waited for gradient communication after backward, per step: the engine's visible overhead.
void Trainer::log_communication() const {
  if (!reducer_ || reducer_->steps() == 0) return;
  log::info("gradient all-reduce: {:.1f} ms per step waited after backward ({})",
            1e3 * reducer_->wait_seconds() / static_cast<double>(reducer_->steps()),
            count_of(static_cast<int64_t>(reducer_->num_buckets()), "bucket"));
}

TrainResult Trainer::finish() {
  TrainResult result;
  result.global_step = state_.global_step;
  result.epoch = state_.epoch;
  const double runtime = state_.runtime_s + clock_.seconds();
  result.train_results = io::Json{{"epoch", state_.epoch},
                                  {"global_step", state_.global_step},
                                  {"train_loss", state_.total_loss / std::max<int64_t>(1, state_.global_step)},
                                  {"train_runtime", runtime},
                                  {"train_samples_per_second",
                                   runtime > 0 ? state_.global_step * global_batch_ * accumulation_ / runtime : 0.0},
                                  {"train_steps_per_second", runtime > 0 ? state_.global_step / runtime : 0.0},
                                  {"skipped_images", skipped_total_}};
  if (scaler_.enabled()) {
    result.train_results["loss_scale"] = scaler_.get_scale();
    result.train_results["skipped_steps"] = scaler_.skipped_steps();
    if (scaler_.skipped_steps() > 0)
      log::info("loss scaling: {} skipped (gradient overflow), scale now {}",
                count_of(scaler_.skipped_steps(), "step"), scaler_.get_scale());
  }
  if (reducer_) {
    result.train_results["world_size"] = group_.size();
    result.train_results["ddp_wait_s_per_step"] = reducer_->wait_seconds() / std::max<int64_t>(1, reducer_->steps());
  }
  log_communication();
  result.eval_results = last_eval_;
  run_.write_results(result.train_results, result.eval_results);
  warn_if_unhealthy();
  return result;
}

// A run that "worked" but learned nothing exits 0: say so at the end, where a user looks (rank 0 speaks for a
// data-parallel run: every rank saw the same losses and metrics).
void Trainer::warn_if_unhealthy() const {
  if (group_.rank() != 0) return;
  if (evaluations_ > 0 && evaluations_at_chance_ == evaluations_)
    log::warn("every evaluation stayed at chance level ({} {:.4f}, chance {:.4f}): the model learned nothing; with "
              "learning_rate {} try 1e-3 to 1e-4 (docs/training.md has good values per algorithm)",
              task_.main_metric(), last_main_metric_, task_.chance_level(), hp_.learning_rate);
  if (first_logged_loss_ > 0 && last_logged_loss_ > first_logged_loss_ * 1.05)
    log::warn("the training loss rose over the run ({:.4f} in the first logged window, {:.4f} in the last): "
              "learning_rate {} is likely too high (docs/training.md has good values per algorithm)",
              first_logged_loss_, last_logged_loss_, hp_.learning_rate);
}

void Trainer::log(io::Json record) {
  run_.log_metrics(record);
  state_.log_history.push_back(std::move(record));
}

TrainResult train(Task& task, const TrainOptions& opts, dist::Group* group) { return Trainer(task, opts, group).run(); }

}  // namespace em::train
