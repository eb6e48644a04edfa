// The trainer on a tiny fake task (a linear classifier on 20 made-up samples): exact resume after a crash, and a
// process that is not the run directory's writer trains the same while writing nothing.
#include <catch2/catch.hpp>

#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/train/trainer.hpp"
#include "fake_task.hpp"
#include "test_support.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace em::train;

namespace {

using em::test::FakeTask;

// metrics.jsonl's lines without their wall-clock fields (time, elapsed_s), which differ between any two runs.
std::vector<std::string> metrics_without_times(const fs::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(em::io::read_file(path.string()));
  for (std::string line; std::getline(in, line);) {
    em::io::Json record = em::io::parse_json(line, path.string());
    CHECK(record.contains("time"));
    CHECK(record.contains("elapsed_s"));
    record.erase("time");
    record.erase("elapsed_s");
    lines.push_back(em::io::dump_json(record));
  }
  return lines;
}

// 5 steps per epoch, 15 in all; a checkpoint every 4 steps, a log line every 2, an evaluation per epoch.
TrainOptions options(const fs::path& out) {
  TrainOptions opts;
  opts.output_dir = out.string();
  opts.hp = Hyperparameters::defaults(em::Algo::classification);
  opts.hp.learning_rate = 0.05;
  opts.hp.per_device_train_batch_size = 4;
  opts.hp.num_train_epochs = 3;
  opts.hp.save_steps = 4;
  opts.hp.logging_steps = 2;
  opts.hp.num_workers = 1;
  opts.hp.seed = 7;
  return opts;
}

}  // namespace

TEST_CASE("a run that crashed after a checkpoint, resumed, ends with the same weights and metrics.jsonl",
          "[train][trainer]") {
  em::test::TempDir tmp;
  FakeTask full_task(1);
  TrainResult full = train(full_task, options(tmp / "full"));
  CHECK(full.global_step == 15);

  {
    FakeTask crashing(1, /*fail_at_call=*/10);
    REQUIRE_THROWS_WITH(train(crashing, options(tmp / "crashed")), "simulated crash");
  }
  CHECK(fs::exists(tmp / "crashed/checkpoint-8/trainer_state.json"));
  CHECK_FALSE(fs::exists(tmp / "crashed/model"));

  FakeTask resumed_task(2);  // other starting weights: everything must come from the checkpoint
  TrainOptions resume = options(tmp / "crashed");
  resume.resume_from_checkpoint = "";
  TrainResult resumed = train(resumed_task, resume);
  CHECK(resumed.global_step == 15);
  CHECK(em::io::read_file((tmp / "full/model/model.safetensors").string()) ==
        em::io::read_file((tmp / "crashed/model/model.safetensors").string()));
  CHECK(metrics_without_times(tmp / "full/metrics.jsonl") == metrics_without_times(tmp / "crashed/metrics.jsonl"));
  CHECK(full.train_results["train_loss"] == resumed.train_results["train_loss"]);
  CHECK(full.eval_results == resumed.eval_results);
}

namespace {
// fp16's loss scaling, run in fp32 on the CPU: the scale grows every 3 clean steps.
TrainOptions scaled(TrainOptions opts) {
  opts.grad_scaler.enabled = true;
  opts.grad_scaler.growth_interval = 3;
  return opts;
}

em::io::Json trainer_state(const fs::path& checkpoint) {
  return em::io::read_json_file((checkpoint / "trainer_state.json").string());
}
}  // namespace

TEST_CASE("loss scaling (fp16's path, in fp32 on the CPU) steps bit-identically, keeps its scale in checkpoints and "
          "resumes with it",
          "[train][trainer][fp16]") {
  em::test::TempDir tmp;
  FakeTask plain_task(1), scaled_task(1);
  TrainResult plain = train(plain_task, options(tmp / "plain"));
  TrainResult full = train(scaled_task, scaled(options(tmp / "scaled")));
  // A power-of-two scale multiplies and divides every gradient exactly: the same steps, bit for bit.
  for (const auto& p : plain_task.model().named_parameters())
    CHECK(torch::equal(p.value(), scaled_task.model().named_parameters()[p.key()]));
  CHECK(metrics_without_times(tmp / "plain/metrics.jsonl") == metrics_without_times(tmp / "scaled/metrics.jsonl"));
  CHECK_FALSE(plain.train_results.contains("loss_scale"));
  // 15 clean steps, growth every 3: 65536 x 2^5.
  CHECK(full.train_results["loss_scale"].get<double>() == 65536.0 * 32);
  CHECK(full.train_results["skipped_steps"].get<int64_t>() == 0);
  const em::io::Json at8 = trainer_state(tmp / "scaled/checkpoint-8")["grad_scaler"];
  CHECK(at8["scale"].get<double>() == 65536.0 * 4);
  CHECK(at8["_growth_tracker"].get<int64_t>() == 2);
  CHECK(at8["growth_interval"].get<int64_t>() == 3);
  CHECK(trainer_state(tmp / "plain/checkpoint-8")["grad_scaler"] == em::io::Json::object());

  // Crashed after checkpoint-8 and resumed: the scale (and its clean-step count) continue from the checkpoint.
  {
    FakeTask crashing(1, /*fail_at_call=*/10);
    REQUIRE_THROWS_WITH(train(crashing, scaled(options(tmp / "crashed"))), "simulated crash");
  }
  FakeTask resumed_task(2);
  TrainOptions resume = scaled(options(tmp / "crashed"));
  resume.resume_from_checkpoint = "";
  TrainResult resumed = train(resumed_task, resume);
  CHECK(resumed.train_results["loss_scale"] == full.train_results["loss_scale"]);
  CHECK(trainer_state(tmp / "crashed/checkpoint-12")["grad_scaler"] ==
        trainer_state(tmp / "scaled/checkpoint-12")["grad_scaler"]);
  CHECK(em::io::read_file((tmp / "scaled/model/model.safetensors").string()) ==
        em::io::read_file((tmp / "crashed/model/model.safetensors").string()));
}

TEST_CASE("a step whose scaled gradients overflow is skipped: the weights and AdamW stay, the scale backs off",
          "[train][trainer][fp16]") {
  em::test::TempDir tmp;
  TrainOptions opts = scaled(options(tmp / "run"));
  opts.grad_scaler.init_scale = std::ldexp(1.0, 1000);  // the scaled loss is inf in fp32
  opts.grad_scaler.backoff_factor = std::ldexp(1.0, -880);  // one back-off lands on 2^120: finite gradients again
  opts.grad_scaler.growth_interval = 1000;
  opts.hp.logging_steps = 1;
  opts.hp.save_steps = 1;
  FakeTask task(1);
  em::tensor::TensorMap before;
  for (const auto& p : task.model().named_parameters()) before[p.key()] = p.value().detach().clone();
  TrainResult result = train(task, opts);
  CHECK(result.train_results["skipped_steps"].get<int64_t>() == 1);
  CHECK(result.train_results["loss_scale"].get<double>() == std::ldexp(1.0, 120));
  CHECK(result.global_step == 15);  // a skipped step still counts (the schedule moves on, as HF's global_step)
  // After step 1 (skipped): the starting weights, AdamW's moments zero and its step count 0; step 2 is its first.
  const auto weights = em::tensor::load_safetensors((tmp / "run/checkpoint-1/model.safetensors").string());
  for (const auto& [name, value] : before) CHECK(torch::equal(weights.at(name), value));
  const auto adam1 = em::tensor::load_safetensors((tmp / "run/checkpoint-1/optimizer.safetensors").string());
  CHECK(adam1.at("step").item<int64_t>() == 0);
  const auto adam2 = em::tensor::load_safetensors((tmp / "run/checkpoint-2/optimizer.safetensors").string());
  CHECK(adam2.at("step").item<int64_t>() == 1);
  CHECK(trainer_state(tmp / "run/checkpoint-1")["grad_scaler"]["scale"].get<double>() == std::ldexp(1.0, 120));
  // The skipped step's gradient norm is logged as NaN (HF Trainer's), i.e. null in JSON; the loss is the real one.
  std::istringstream in(em::io::read_file((tmp / "run/metrics.jsonl").string()));
  std::string first;
  std::getline(in, first);
  const em::io::Json record = em::io::parse_json(first, "metrics.jsonl");
  CHECK(record["step"] == 1);
  CHECK(record["grad_norm"].is_null());
  CHECK(std::isfinite(record["loss"].get<double>()));
}

TEST_CASE("a process that is not the writer trains the same and leaves the run directory alone", "[train][trainer]") {
  em::test::TempDir tmp;
  FakeTask writer_task(1), silent_task(1);
  TrainResult written = Trainer(writer_task, options(tmp / "written")).run();
  TrainResult silent = Trainer(silent_task, options(tmp / "silent"), /*group=*/nullptr, /*writer=*/false).run();
  CHECK(fs::exists(tmp / "written/model/model.safetensors"));
  CHECK(fs::exists(tmp / "written/checkpoint-15/trainer_state.json"));
  CHECK_FALSE(fs::exists(tmp / "silent"));
  CHECK(written.train_results["train_loss"] == silent.train_results["train_loss"]);
  CHECK(written.eval_results == silent.eval_results);
  for (const auto& p : writer_task.model().named_parameters())
    CHECK(torch::equal(p.value(), silent_task.model().named_parameters()[p.key()]));
}

namespace {
// A task that learns nothing: every evaluation at chance level, a loss that rises step after step.
class UnlearningTask : public FakeTask {
 public:
  UnlearningTask() : FakeTask(7) {}
  LossOutput loss(const em::tensor::Batch& batch) override {
    LossOutput out = FakeTask::loss(batch);
    out.loss = out.loss * static_cast<double>(++scale_);
    return out;
  }
  EvalResult evaluate(const EvalOptions&) override {
    return accuracy_result(1.0 / 3);
  }
  double chance_level() const override { return 1.0 / 3; }

 private:
  int scale_ = 0;
};

}  // namespace

TEST_CASE("a run that learned nothing ends with warnings that say so", "[train][trainer]") {
  em::test::TempDir tmp;
  UnlearningTask task;
  const std::string err = em::test::stderr_of([&] { train(task, options(tmp / "run")); });
  CHECK_THAT(err, Catch::Contains("every evaluation stayed at chance level (accuracy 0.3333, chance 0.3333)"));
  CHECK_THAT(err, Catch::Contains("the training loss rose over the run"));
  CHECK_THAT(err, Catch::Contains("docs/training.md"));

  em::test::TempDir tmp2;
  FakeTask healthy(7);
  const std::string fine = em::test::stderr_of([&] { train(healthy, options(tmp2 / "run")); });
  CHECK_THAT(fine, !Catch::Contains("chance level"));
}

namespace {
// The logged losses of metrics.jsonl, in step order.
std::vector<double> logged_losses(const fs::path& path) {
  std::vector<double> losses;
  std::istringstream in(em::io::read_file(path.string()));
  for (std::string line; std::getline(in, line);) {
    em::io::Json record = em::io::parse_json(line, path.string());
    if (record.contains("loss")) losses.push_back(record["loss"].get<double>());
  }
  return losses;
}
}  // namespace

TEST_CASE("two data-parallel ranks train like one process with their global batch, uneven last batch included",
          "[train][trainer][dist]") {
  // 20 samples, global batch 6: steps of 6, 6, 6 and 2 images per epoch; the ranks take 3 + 3 and, at the end, 1 + 1.
  em::test::TempDir tmp;
  TrainOptions single = options(tmp / "single");
  single.hp.per_device_train_batch_size = 6;
  single.hp.logging_steps = 1;
  FakeTask single_task(1);
  TrainResult one = train(single_task, single);
  CHECK(one.global_step == 12);

  TrainOptions dp = single;
  dp.output_dir = (tmp / "dp").string();
  dp.hp.per_device_train_batch_size = 3;
  FakeTask tasks[2] = {FakeTask(1), FakeTask(5)};  // rank 1 starts elsewhere: rank 0's weights are broadcast
  TrainResult results[2];
  em::test::with_two_ranks(
      [&](em::dist::Group& group) { results[group.rank()] = train(tasks[group.rank()], dp, &group); });
  CHECK(results[0].global_step == 12);
  CHECK(results[1].global_step == 12);
  const std::vector<double> a = logged_losses(tmp / "single/metrics.jsonl"), b = logged_losses(tmp / "dp/metrics.jsonl");
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);  // rank 0 alone wrote it
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).epsilon(1e-6));
  // Both ranks end with the same weights, those of the single process.
  for (int rank = 0; rank < 2; ++rank) {
    auto p1 = single_task.model().parameters(), p2 = tasks[rank].model().parameters();
    for (size_t i = 0; i < p1.size(); ++i) CHECK(torch::allclose(p1[i], p2[i], 1e-5, 1e-6));
  }
  CHECK(results[0].train_results["world_size"] == 2);
}
