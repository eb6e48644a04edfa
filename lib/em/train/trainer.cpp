#include "em/train/trainer.hpp"
#include "em/data/sampling.hpp"

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/progress.hpp"
#include "em/core/signals.hpp"
#include "em/tensor/loader.hpp"
#include "em/io/file.hpp"
#include "em/train/checkpoint.hpp"
#include "em/train/schedule.hpp"
#include "em/train/tensorboard.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

namespace em::train {
namespace fs = std::filesystem;

namespace {

// metrics.jsonl: one JSON object per line, appended and flushed as it happens (for jq, Makefiles, plots).
class MetricsLog {
 public:
  // Keeps only the lines up to `keep_until_step` (a resumed run rewrites what came after its checkpoint).
  MetricsLog(const fs::path& path, int64_t keep_until_step) : path_(path) {
    std::string kept;
    if (keep_until_step >= 0 && fs::exists(path)) {
      std::istringstream in(io::read_file(path.string()));
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto j = io::Json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.contains("step") && j["step"].get<int64_t>() <= keep_until_step) kept += line + "\n";
      }
    }
    io::write_file_atomic(path, kept);
    out_.open(path, std::ios::app);
    if (!out_) fail("{}: cannot open for appending", path.string());
  }
  void write(const io::Json& record) {
    out_ << io::dump_json(record) << "\n";
    out_.flush();
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

struct Clock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

}  // namespace

TrainResult train(Task& task, const TrainOptions& opts) {
  const Hyperparameters& hp = opts.hp;
  const fs::path out = opts.output_dir;
  const bool resuming = opts.resume_from_checkpoint.has_value();
  prepare_output_dir(out, opts.overwrite_output_dir, resuming);

  const int64_t n = task.train_size();
  const int64_t batch_size = hp.per_device_train_batch_size;
  TrainerState state;
  state.steps_per_epoch = (n + batch_size - 1) / batch_size;
  state.total_steps = static_cast<int64_t>(std::ceil(hp.num_train_epochs * state.steps_per_epoch - 1e-9));
  if (state.total_steps < 1) state.total_steps = 1;
  const int64_t warmup_steps = static_cast<int64_t>(std::ceil(hp.warmup_ratio * state.total_steps));
  const ScheduleType schedule = parse_schedule_type(hp.lr_scheduler_type);
  const int64_t eval_every = hp.eval_strategy == "steps" ? (hp.eval_steps > 0 ? hp.eval_steps : hp.save_steps) : 0;

  AdamWOptions adam;
  adam.lr = hp.learning_rate;
  adam.weight_decay = hp.weight_decay;
  AdamW optimizer(task.param_groups(hp.weight_decay), adam);

  io::Json hp_json = hp.to_json();
  if (resuming) {
    fs::path dir = opts.resume_from_checkpoint->empty() ? latest_checkpoint(out) : fs::path(*opts.resume_from_checkpoint);
    if (!fs::exists(dir / run_dir::kTrainerState))
      fail("{}: not a complete checkpoint (no {})", dir.string(), run_dir::kTrainerState);
    io::Json saved_hp = io::read_json_file((dir / "hyperparameters.json").string());
    for (const char* key : {"per_device_train_batch_size", "seed", "num_train_epochs", "learning_rate"})
      if (saved_hp.contains(key) && saved_hp[key] != hp_json[key])
        log::warn("resuming with {} = {} but the checkpoint was trained with {}: the result will differ from an "
                  "uninterrupted run",
                  key, io::dump_json(hp_json[key]), io::dump_json(saved_hp[key]));
    TrainerState saved = load_checkpoint(dir, task, optimizer);
    if (saved.steps_per_epoch != state.steps_per_epoch)
      log::warn("the dataset or batch size changed since {}: {} steps per epoch now, {} then", dir.string(),
                state.steps_per_epoch, saved.steps_per_epoch);
    int64_t total = state.total_steps, spe = state.steps_per_epoch;
    state = saved;
    state.total_steps = total;
    state.steps_per_epoch = spe;
    log::info("resuming from {} (step {} of {})", dir.string(), state.global_step, state.total_steps);
  }
  io::write_json_file(out / run_dir::kHyperparameters, hp_json);
  MetricsLog metrics(out / run_dir::kMetrics, resuming ? state.global_step : -1);
  EventWriter events(out / run_dir::kRuns);
  // TensorBoard drops events after this step from earlier files: what a killed run logged past its checkpoint.
  events.add_session_start(state.global_step);

  log::info("training {} images, {} steps ({} per epoch, batch {}), {} threads", n, state.total_steps,
            state.steps_per_epoch, batch_size, torch::get_num_threads());

  Progress progress("train", state.total_steps, "step");
  Clock clock;
  int64_t skipped_total = 0;
  // Training speed for the progress line: time spent in steps only (evaluations and checkpoints excluded).
  Clock since_step;
  double step_seconds = 0;
  int64_t images_stepped = 0;
  int64_t last_saved_step = resuming ? state.global_step : -1;
  io::Json last_eval;
  bool stop_early = false;

  auto log_record = [&](io::Json record) {
    metrics.write(record);
    state.log_history.push_back(std::move(record));
  };

  auto run_evaluation = [&]() {
    EvalOptions eo;
    eo.bf16 = hp.bf16;
    eo.show_progress = false;  // the training progress line is enough
    EvalResult result = task.evaluate(eo);
    task.model().train();
    io::Json record{{"step", state.global_step}, {"epoch", state.epoch}};
    for (const auto& [name, value] : result.scalars) {
      record["eval_" + name] = value;
      events.add_scalar("eval/" + name, value, state.global_step);
    }
    events.flush();
    log_record(record);
    last_eval = result.metrics;
    since_step = Clock{};
    std::string main = task.main_metric();
    auto it = result.scalars.find(main);
    if (it != result.scalars.end() && std::isfinite(it->second)) {
      log::info("step {}: eval {} = {:.4f}", state.global_step, main, it->second);
      if (!state.has_best || it->second > state.best_metric) {
        state.has_best = true;
        state.best_metric = it->second;
        state.best_step = state.global_step;
        state.evals_without_improvement = 0;
        if (hp.load_best_model_at_end) {
          fs::path tmp = out / ".tmp-best-model";
          std::error_code ec;
          fs::remove_all(tmp, ec);
          task.save_model(tmp);
          io::replace_directory(tmp, out / run_dir::kBestModel);
        }
      } else {
        ++state.evals_without_improvement;
        if (hp.early_stopping_patience > 0 && state.evals_without_improvement >= hp.early_stopping_patience) {
          log::info("early stopping: {} evaluations without improvement of {}", state.evals_without_improvement, main);
          stop_early = true;
        }
      }
    }
  };

  auto save = [&](const fs::path& model_files = {}) {
    state.runtime_s += clock.seconds();
    clock = Clock{};
    save_checkpoint(out, task, optimizer, state, hp_json, model_files);
    last_saved_step = state.global_step;
    rotate_checkpoints(out, hp.save_total_limit, hp.load_best_model_at_end ? state.best_step : -1);
    since_step = Clock{};
  };

  task.model().train();
  while (state.global_step < state.total_steps && !stop_early) {
    const int64_t epoch_index = state.global_step / state.steps_per_epoch;
    const int64_t first = state.global_step % state.steps_per_epoch;
    const int64_t end = std::min(state.steps_per_epoch, state.total_steps - epoch_index * state.steps_per_epoch);
    const std::vector<int64_t> order = data::epoch_permutation(n, static_cast<uint64_t>(hp.seed), epoch_index);
    tensor::PrefetchLoader loader(
        static_cast<size_t>(end - first),
        [&, epoch_index, first](size_t b) {
          int64_t from = (first + static_cast<int64_t>(b)) * batch_size, to = std::min(n, from + batch_size);
          std::vector<int64_t> indices(order.begin() + from, order.begin() + to);
          return task.train_batch(indices, epoch_index);
        },
        static_cast<int>(hp.num_workers), std::max<int>(2, static_cast<int>(hp.num_workers) * 2));

    while (auto batch = loader.next()) {
      skipped_total += batch->skipped;
      if (skipped_total > hp.max_bad_samples)
        fail("{} unreadable training images (over --max_bad_samples {}); fix or remove them (em-validate lists them)",
             skipped_total, hp.max_bad_samples);
      const double lr = lr_at(schedule, hp.learning_rate, state.global_step, state.total_steps, warmup_steps);
      optimizer.set_lr(lr);
      LossOutput out_loss;
      {
        tensor::Bf16Autocast autocast(hp.bf16);
        out_loss = task.loss(*batch);
      }
      out_loss.loss.backward();
      // clip_grad_norm_'s scaling happens inside the optimizer's pass over the gradients (same bits, one pass less).
      double grad_norm = 0;
      double grad_scale = 1.0;
      if (hp.max_grad_norm > 0) {
        torch::Tensor norm = total_grad_norm(task.model().parameters());
        grad_scale = clip_coefficient(norm, hp.max_grad_norm);
        grad_norm = norm.item<double>();
      }
      optimizer.step(grad_scale);
      optimizer.zero_grad();

      const double loss = out_loss.loss.item<double>();
      if (!std::isfinite(loss))
        fail("training diverged: loss is {} at step {}; lower learning_rate (now {}) — the last checkpoint is "
             "still in {}",
             loss, state.global_step + 1, hp.learning_rate, out.string());
      ++state.global_step;
      images_stepped += batch->pixel_values.size(0);
      step_seconds += since_step.seconds();
      since_step = Clock{};
      state.epoch = static_cast<double>(state.global_step) / state.steps_per_epoch;
      state.window_loss += loss;
      state.window_steps += 1;
      state.total_loss += loss;

      if (state.global_step % hp.logging_steps == 0 || state.global_step == state.total_steps) {
        double mean = state.window_loss / std::max<int64_t>(1, state.window_steps);
        io::Json record{{"step", state.global_step}, {"epoch", state.epoch}, {"loss", mean}, {"learning_rate", lr}};
        if (hp.max_grad_norm > 0) record["grad_norm"] = grad_norm;
        for (const auto& [name, value] : out_loss.terms) record[name] = value;
        log_record(record);
        events.add_scalar("train/loss", mean, state.global_step);
        events.add_scalar("train/learning_rate", lr, state.global_step);
        events.add_scalar("train/epoch", state.epoch, state.global_step);
        for (const auto& [name, value] : out_loss.terms) events.add_scalar("train/" + name, value, state.global_step);
        events.flush();
        state.window_loss = 0;
        state.window_steps = 0;
      }
      progress.update(state.global_step,
                      fmt::format("epoch {:.2f} loss {:.4f} lr {:.3g} {:.1f} img/s", state.epoch, loss, lr,
                                  step_seconds > 0 ? images_stepped / step_seconds : 0.0));

      const bool epoch_end = state.global_step % state.steps_per_epoch == 0 || state.global_step == state.total_steps;
      if ((hp.eval_strategy == "epoch" && epoch_end) || (eval_every > 0 && state.global_step % eval_every == 0))
        run_evaluation();
      // The last step's checkpoint is written after the loop, with the final model (sharing its files).
      if (state.global_step % hp.save_steps == 0 && state.global_step < state.total_steps) save();
      if (signals::stop_requested()) {
        if (last_saved_step != state.global_step) save();
        progress.finish();
        throw Interrupted(fmt::format("stopped by signal {} at step {}; continue with --resume_from_checkpoint "
                                      "(checkpoint {})",
                                      signals::stop_signal(), state.global_step,
                                      (out / fmt::format("checkpoint-{}", state.global_step)).string()));
      }
      if (stop_early) break;
    }
  }
  progress.finish();

  // The final model: the best evaluated one with load_best_model_at_end, else the last, which the final checkpoint
  // (when this step has none yet) shares by hard links instead of a second copy.
  fs::path model_dir = out / run_dir::kModel;
  if (hp.load_best_model_at_end && fs::exists(out / run_dir::kBestModel)) {
    if (last_saved_step != state.global_step) save();
    std::error_code ec;
    fs::remove_all(model_dir, ec);
    fs::copy(out / run_dir::kBestModel, model_dir, fs::copy_options::recursive);
    log::info("model/: the best checkpoint (step {}, {} {:.4f})", state.best_step, task.main_metric(),
              state.best_metric);
  } else {
    fs::path tmp = out / ".tmp-model";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    task.save_model(tmp);
    if (last_saved_step != state.global_step) save(tmp);
    io::replace_directory(tmp, model_dir);
  }

  TrainResult result;
  result.global_step = state.global_step;
  result.epoch = state.epoch;
  const double runtime = state.runtime_s + clock.seconds();
  result.train_results = io::Json{{"epoch", state.epoch},
                                  {"global_step", state.global_step},
                                  {"train_loss", state.total_loss / std::max<int64_t>(1, state.global_step)},
                                  {"train_runtime", runtime},
                                  {"train_samples_per_second",
                                   runtime > 0 ? state.global_step * batch_size / runtime : 0.0},
                                  {"train_steps_per_second", runtime > 0 ? state.global_step / runtime : 0.0},
                                  {"skipped_images", skipped_total}};
  result.eval_results = last_eval;
  io::write_json_file(out / "train_results.json", result.train_results);
  io::Json all = result.train_results;
  if (!last_eval.is_null()) {
    io::write_json_file(out / "eval_results.json", last_eval);
    for (auto it = last_eval.begin(); it != last_eval.end(); ++it)
      if (it.value().is_number()) all["eval_" + it.key()] = it.value();
  }
  io::write_json_file(out / "all_results.json", all);
  return result;
}

}  // namespace em::train
