// HF Trainer's options in the trainer, on the tiny fake task: gradient_accumulation_steps, max_steps,
// metric_for_best_model / greater_is_better, early_stopping_patience / early_stopping_threshold, save_total_limit with
// the best checkpoint, each against what HF Trainer's loop does (transformers' trainer.py, trainer_callback.py).
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/train/trainer.hpp"
#include "fake_task.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace em::train;
using Catch::Contains;
using em::io::Json;
using em::test::FakeTask;

namespace {

// 20 samples, batch 4: 5 batches per epoch; 3 epochs; a checkpoint every 4 steps, a log line every step.
TrainOptions options(const fs::path& out) {
  TrainOptions opts;
  opts.output_dir = out.string();
  opts.hp = Hyperparameters::defaults(em::Algo::classification);
  opts.hp.learning_rate = 0.05;
  opts.hp.per_device_train_batch_size = 4;
  opts.hp.num_train_epochs = 3;
  opts.hp.save_steps = 4;
  opts.hp.logging_steps = 1;
  opts.hp.num_workers = 1;
  opts.hp.seed = 7;
  return opts;
}

std::vector<Json> records(const fs::path& metrics_jsonl) {
  std::vector<Json> out;
  std::istringstream in(em::io::read_file(metrics_jsonl.string()));
  for (std::string line; std::getline(in, line);) {
    Json r = em::io::parse_json(line, metrics_jsonl.string());
    r.erase("time");
    r.erase("elapsed_s");
    out.push_back(std::move(r));
  }
  return out;
}

// The values of `key` in the lines that have it, in order.
std::vector<double> column(const std::vector<Json>& lines, const std::string& key) {
  std::vector<double> v;
  for (const auto& r : lines)
    if (r.contains(key)) v.push_back(r[key].get<double>());
  return v;
}
std::vector<int64_t> steps_with(const std::vector<Json>& lines, const std::string& key) {
  std::vector<int64_t> v;
  for (const auto& r : lines)
    if (r.contains(key)) v.push_back(r["step"].get<int64_t>());
  return v;
}

std::vector<int64_t> checkpoint_steps(const fs::path& out) {
  std::vector<int64_t> steps;
  for (const auto& [step, path] : list_checkpoints(out)) steps.push_back(step);
  return steps;
}

Json trainer_state(const fs::path& checkpoint) {
  return em::io::read_json_file((checkpoint / "trainer_state.json").string());
}

std::string weights(const fs::path& model_dir) { return em::io::read_file((model_dir / "model.safetensors").string()); }

// Evaluations that report scripted values (accuracy, and with compute_loss the loss), the last one repeated.
class ScriptedTask : public FakeTask {
 public:
  ScriptedTask(std::vector<double> accuracy, std::vector<double> loss, bool declares_metrics = true)
      : FakeTask(1), accuracy_(std::move(accuracy)), loss_(std::move(loss)), declares_(declares_metrics) {}
  EvalResult evaluate(const EvalOptions& options) override {
    const size_t i = evaluations_++;
    EvalResult r;
    const double accuracy = accuracy_[std::min(i, accuracy_.size() - 1)];
    r.metrics = Json{{"accuracy", accuracy}};
    r.scalars = {{"accuracy", accuracy}};
    if (options.compute_loss) r.set_loss(loss_[std::min(i, loss_.size() - 1)]);
    return r;
  }
  std::vector<std::string> metric_names() const override {
    return declares_ ? std::vector<std::string>{"accuracy", "loss"} : std::vector<std::string>{};
  }
  size_t evaluations() const { return evaluations_; }

 private:
  std::vector<double> accuracy_, loss_;
  bool declares_;
  size_t evaluations_ = 0;
};

}  // namespace

TEST_CASE("gradient_accumulation_steps 2 on batches of 4 trains as batches of 8: the same losses, learning rates, "
          "weights and optimizer steps, the epoch's last step on the one batch left",
          "[train][trainer][accumulation]") {
  em::test::TempDir tmp;
  TrainOptions big = options(tmp / "big");
  big.hp.per_device_train_batch_size = 8;
  FakeTask big_task(1);
  const TrainResult b = train(big_task, big);

  TrainOptions accumulated = options(tmp / "accumulated");
  accumulated.hp.gradient_accumulation_steps = 2;
  FakeTask accumulated_task(1);
  const TrainResult a = train(accumulated_task, accumulated);

  // 20 images: optimizer steps of 8, 8 and 4 images per epoch either way (HF: ceil(5 batches / 2) steps per epoch,
  // the last on the batch left, its loss divided by 1, not 2).
  CHECK(b.global_step == 9);
  CHECK(a.global_step == 9);
  CHECK(accumulated_task.loss_calls() == 15);
  CHECK(big_task.loss_calls() == 9);
  const auto big_lines = records(tmp / "big/metrics.jsonl"), acc_lines = records(tmp / "accumulated/metrics.jsonl");
  const auto big_loss = column(big_lines, "loss"), acc_loss = column(acc_lines, "loss");
  REQUIRE(big_loss.size() == 9);
  REQUIRE(acc_loss.size() == 9);  // logging_steps counts optimizer steps
  for (size_t i = 0; i < big_loss.size(); ++i) CHECK(acc_loss[i] == Approx(big_loss[i]).epsilon(1e-6));
  CHECK(column(acc_lines, "learning_rate") == column(big_lines, "learning_rate"));
  // Evaluations at each epoch's end, checkpoints every 4 optimizer steps.
  CHECK(steps_with(acc_lines, "eval_accuracy") == std::vector<int64_t>{3, 6, 9});
  CHECK(checkpoint_steps(tmp / "accumulated") == std::vector<int64_t>{4, 8, 9});
  // HF's epoch counts batches: after the first step 2 of the epoch's 5 batches.
  std::vector<double> epochs;  // of the steps' lines (the evaluations' have one too)
  for (const auto& r : acc_lines)
    if (r.contains("loss")) epochs.push_back(r["epoch"].get<double>());
  CHECK(epochs[0] == Approx(0.4));
  CHECK(epochs[2] == Approx(1.0));
  CHECK(epochs[3] == Approx(1.4));
  CHECK(a.epoch == Approx(3.0));
  auto p1 = big_task.model().parameters(), p2 = accumulated_task.model().parameters();
  for (size_t i = 0; i < p1.size(); ++i) CHECK(torch::allclose(p1[i], p2[i], 1e-5, 1e-6));
  CHECK(trainer_state(tmp / "accumulated/checkpoint-4")["gradient_accumulation_steps"] == 2);
  CHECK(em::io::read_json_file((tmp / "accumulated/hyperparameters.json").string())["gradient_accumulation_steps"] == 2);
}

TEST_CASE("max_steps overrides num_train_epochs: the schedule ends there, training stops there, and a run resumed "
          "after a crash ends bit-identical",
          "[train][trainer][max_steps]") {
  em::test::TempDir tmp;
  auto with_max_steps = [&](const std::string& name) {
    TrainOptions o = options(tmp / name);
    o.hp.num_train_epochs = 5;  // ignored
    o.hp.max_steps = 7;
    o.hp.gradient_accumulation_steps = 2;  // 3 steps per epoch: step 7 is the first of the third epoch
    return o;
  };
  FakeTask full_task(1);
  const TrainResult full = train(full_task, with_max_steps("full"));
  CHECK(full.global_step == 7);
  CHECK(full_task.loss_calls() == 5 + 5 + 2);
  CHECK(full.epoch == Approx(2.4));
  const auto lines = records(tmp / "full/metrics.jsonl");
  const auto lr = column(lines, "learning_rate");
  REQUIRE(lr.size() == 7);
  // Linear decay over the 7 steps (HF's schedule gets max_steps as num_training_steps): step k uses 0.05 (7 - k) / 7.
  for (size_t k = 0; k < lr.size(); ++k) CHECK(lr[k] == Approx(0.05 * (7.0 - k) / 7.0));
  CHECK(trainer_state(tmp / "full/checkpoint-7")["max_steps"] == 7);

  {
    FakeTask crashing(1, /*fail_at_call=*/10);  // inside step 6, after checkpoint-4
    REQUIRE_THROWS_WITH(train(crashing, with_max_steps("crashed")), "simulated crash");
  }
  CHECK(checkpoint_steps(tmp / "crashed") == std::vector<int64_t>{4});
  FakeTask resumed_task(2);
  TrainOptions resume = with_max_steps("crashed");
  resume.resume_from_checkpoint = "";
  const TrainResult resumed = train(resumed_task, resume);
  CHECK(resumed.global_step == 7);
  CHECK(weights(tmp / "full/model") == weights(tmp / "crashed/model"));
  CHECK(records(tmp / "crashed/metrics.jsonl") == lines);
}

TEST_CASE("metric_for_best_model picks the best checkpoint by any evaluation key, eval_loss included, with HF's "
          "greater_is_better default",
          "[train][trainer][best]") {
  em::test::TempDir tmp;
  // Accuracy is best at the first evaluation (step 5), the loss at the second (step 10).
  const std::vector<double> accuracy{0.9, 0.2, 0.5}, loss{1.0, 0.4, 0.7};
  auto run = [&](const std::string& name, const std::string& metric, std::optional<bool> greater) {
    TrainOptions o = options(tmp / name);
    o.hp.save_strategy = "epoch";
    o.hp.load_best_model_at_end = true;
    o.hp.set("metric_for_best_model", metric);
    o.hp.greater_is_better = greater;
    ScriptedTask task(accuracy, loss);
    train(task, o);
    return trainer_state(tmp / name / "checkpoint-15");
  };
  const Json by_loss = run("loss", "eval_loss", std::nullopt);
  CHECK(by_loss["best_step"] == 10);
  CHECK(by_loss["best_metric"] == 0.4);
  CHECK(by_loss["best_model_checkpoint"] == "checkpoint-10");
  CHECK(weights(tmp / "loss/model") == weights(tmp / "loss/checkpoint-10"));
  const Json hp = em::io::read_json_file((tmp / "loss/hyperparameters.json").string());
  CHECK(hp["metric_for_best_model"] == "eval_loss");
  CHECK(hp["greater_is_better"] == false);
  // The eval_ prefix is optional; "loss" is as lower-is-better as "eval_loss".
  CHECK(run("bare_loss", "loss", std::nullopt)["best_step"] == 10);
  const Json by_accuracy = run("accuracy", "accuracy", std::nullopt);
  CHECK(by_accuracy["best_step"] == 5);
  CHECK(weights(tmp / "accuracy/model") == weights(tmp / "accuracy/checkpoint-5"));
  // An explicit greater_is_better wins over the name: the largest loss.
  CHECK(run("max_loss", "eval_loss", true)["best_step"] == 5);
  // The default metric is the algorithm's main metric (accuracy), greater is better.
  TrainOptions o = options(tmp / "default");
  CHECK(o.hp.metric_for_best_model == "accuracy");
  CHECK(o.hp.best_metric_greater());
}

TEST_CASE("an unknown metric_for_best_model is refused before anything is written, naming the evaluation's metrics",
          "[train][trainer][best]") {
  em::test::TempDir tmp;
  TrainOptions o = options(tmp / "declared");
  o.hp.metric_for_best_model = "eval_f1";
  ScriptedTask declared({0.5}, {1.0});
  CHECK_THROWS_AS(Trainer(declared, o), em::UsageError);
  CHECK_THROWS_WITH(Trainer(declared, o), Contains("'eval_f1' is not a metric") &&
                                              Contains("they log eval_accuracy, eval_loss"));
  CHECK_FALSE(fs::exists(tmp / "declared"));

  // A task that cannot say its metrics beforehand: the first evaluation fails, naming what it logged (HF's KeyError).
  o.output_dir = (tmp / "undeclared").string();
  ScriptedTask undeclared({0.5}, {1.0}, /*declares_metrics=*/false);
  CHECK_THROWS_WITH(train(undeclared, o), Contains("logged no eval_f1") && Contains("eval_accuracy, eval_loss"));
  CHECK(undeclared.evaluations() == 1);
}

TEST_CASE("early stopping counts evaluations that do not beat the best by more than early_stopping_threshold in the "
          "metric's direction, as HF's EarlyStoppingCallback",
          "[train][trainer][early_stopping]") {
  em::test::TempDir tmp;
  auto run = [&](const std::string& name, ScriptedTask& task, const std::string& metric, double threshold) {
    TrainOptions o = options(tmp / name);
    o.hp.eval_strategy = "steps";
    o.hp.eval_steps = 2;
    o.hp.set("metric_for_best_model", metric);
    o.hp.early_stopping_patience = 2;
    o.hp.early_stopping_threshold = threshold;
    return train(task, o);
  };
  // Steps 2, 4, 6, 8: +0.05 (improves), +0.015 (not enough: 1, but the best becomes 0.565 as in HF), +0.015 over
  // 0.565 (2: stop). Measured against the best at the last counted improvement (0.55) it would have improved.
  ScriptedTask rising({0.5, 0.55, 0.565, 0.58, 0.9}, {1.0});
  const TrainResult stopped = run("threshold", rising, "accuracy", 0.02);
  CHECK(stopped.global_step == 8);
  CHECK(rising.evaluations() == 4);
  CHECK(trainer_state(tmp / "threshold/checkpoint-8")["evals_without_improvement"] == 2);
  // Without a threshold every one of them is an improvement: the run goes on to its 15 steps.
  ScriptedTask rising_again({0.5, 0.55, 0.565, 0.58, 0.6, 0.7, 0.8, 0.9}, {1.0});
  CHECK(run("no_threshold", rising_again, "accuracy", 0.0).global_step == 15);
  // A loss improves downwards: 0.95 is -0.05, 0.935 and 0.92 only -0.015 each.
  ScriptedTask falling({0.5}, {1.0, 0.95, 0.935, 0.92, 0.1});
  CHECK(run("loss", falling, "eval_loss", 0.02).global_step == 8);
  // A rising loss never improves: the second and third evaluations stop it.
  ScriptedTask worse({0.5}, {1.0, 1.1, 1.2, 1.3});
  CHECK(run("worse", worse, "eval_loss", 0.0).global_step == 6);
}

TEST_CASE("save_total_limit never removes the best checkpoint; with limit 1 the newest stays beside it until the end, "
          "when only the best stays (HF)",
          "[train][trainer][rotation]") {
  em::test::TempDir tmp;
  auto run = [&](const std::string& name, int64_t limit, const std::string& eval_strategy) {
    TrainOptions o = options(tmp / name);
    o.hp.eval_strategy = eval_strategy;
    o.hp.eval_steps = 2;
    o.hp.save_steps = 2;
    o.hp.save_total_limit = limit;
    o.hp.load_best_model_at_end = eval_strategy != "no";
    ScriptedTask task({0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {1.0});  // the best is the first evaluation, step 2
    train(task, o);
  };
  run("two", 2, "steps");
  CHECK(checkpoint_steps(tmp / "two") == std::vector<int64_t>{2, 15});
  CHECK(weights(tmp / "two/model") == weights(tmp / "two/checkpoint-2"));
  run("one", 1, "steps");
  CHECK(checkpoint_steps(tmp / "one") == std::vector<int64_t>{2});
  // Without evaluations there is no best checkpoint: the newest ones stay.
  run("none", 2, "no");
  CHECK(checkpoint_steps(tmp / "none") == std::vector<int64_t>{14, 15});
}

TEST_CASE("two data-parallel ranks with gradient accumulation train like one process on the whole step's batch",
          "[train][trainer][dist][accumulation]") {
  // Global batch 2 x 2 = 4, two of them per step: steps of 8, 8 and 4 images, as one process with batch 8.
  em::test::TempDir tmp;
  TrainOptions single = options(tmp / "single");
  single.hp.per_device_train_batch_size = 8;
  FakeTask single_task(1);
  train(single_task, single);

  TrainOptions dp = options(tmp / "dp");
  dp.hp.per_device_train_batch_size = 2;
  dp.hp.gradient_accumulation_steps = 2;
  FakeTask tasks[2] = {FakeTask(1), FakeTask(5)};
  TrainResult results[2];
  em::test::with_two_ranks(
      [&](em::dist::Group& group) { results[group.rank()] = train(tasks[group.rank()], dp, &group); });
  CHECK(results[0].global_step == 9);
  const auto a = column(records(tmp / "single/metrics.jsonl"), "loss"), b = column(records(tmp / "dp/metrics.jsonl"), "loss");
  REQUIRE(a.size() == 9);
  REQUIRE(b.size() == 9);
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).epsilon(1e-6));
  for (int rank = 0; rank < 2; ++rank) {
    auto p1 = single_task.model().parameters(), p2 = tasks[rank].model().parameters();
    for (size_t i = 0; i < p1.size(); ++i) CHECK(torch::allclose(p1[i], p2[i], 1e-5, 1e-6));
  }
}
