// The hyperparameter table against the platform's table (docs/training.md): defaults per algorithm, which
// parameters apply where, and what hyperparameters.json lists.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/train/hyperparameters.hpp"

using em::Algo;
using em::train::Hyperparameters;
using Catch::Contains;

TEST_CASE("defaults per algorithm are the platform's table", "[train][hyperparameters]") {
  const Hyperparameters c = Hyperparameters::defaults(Algo::classification);
  CHECK(c.input_size == 28);
  CHECK(c.learning_rate == 0.1);
  CHECK(c.per_device_train_batch_size == 16);
  CHECK(c.per_device_eval_batch_size == 16);
  CHECK(c.num_train_epochs == 3);
  CHECK(c.save_steps == 500);
  CHECK(c.weight_decay == 0.0);
  CHECK(c.max_grad_norm == 1.0);

  const Hyperparameters s = Hyperparameters::defaults(Algo::segmentation);
  CHECK(s.learning_rate == 2e-4);
  CHECK(s.per_device_train_batch_size == 4);
  CHECK(s.per_device_eval_batch_size == 4);
  CHECK(s.num_train_epochs == 3.0);
  CHECK(s.image_size == 512);
  CHECK(s.weight_decay == 0.0);

  const Hyperparameters d = Hyperparameters::defaults(Algo::detection);
  CHECK(d.learning_rate == 2e-4);
  CHECK(d.per_device_train_batch_size == 4);
  CHECK(d.per_device_eval_batch_size == 4);
  CHECK(d.threshold == 0.5);
  CHECK(d.weight_decay == 1e-4);  // DETR's recipe
  CHECK(d.max_grad_norm == 0.1);
  CHECK(d.image_size == 800);
  CHECK(d.save_steps == 500);
}

TEST_CASE("a parameter applies only to the algorithms of its row", "[train][hyperparameters]") {
  Hyperparameters c = Hyperparameters::defaults(Algo::classification);
  REQUIRE_THROWS_WITH(c.set("threshold", "0.3"), "hyperparameter threshold does not apply to --algo classification");
  REQUIRE_THROWS_AS(c.set("image_size", "64"), em::UsageError);
  Hyperparameters d = Hyperparameters::defaults(Algo::detection);
  REQUIRE_THROWS_AS(d.set("input_size", "64"), em::UsageError);
  d.set("threshold", "0.3");
  CHECK(d.threshold == 0.3);

  for (const auto& spec : em::train::param_specs()) {
    INFO(spec.name);
    if (spec.name == "input_size") CHECK(spec.algos == em::AlgoSet{Algo::classification});
    if (spec.name == "threshold" || spec.name == "augmentation") CHECK(spec.algos == em::AlgoSet{Algo::detection});
    if (spec.name == "image_size") CHECK(spec.algos == (em::AlgoSet{Algo::segmentation, Algo::detection}));
    if (spec.name == "learning_rate") CHECK(spec.algos == em::AlgoSet::all());
  }
}

TEST_CASE("hyperparameters.json lists exactly the parameters that apply", "[train][hyperparameters]") {
  const em::io::Json c = Hyperparameters::defaults(Algo::classification).to_json();
  CHECK(c.at("algo") == "classification");
  CHECK(c.contains("input_size"));
  CHECK_FALSE(c.contains("threshold"));
  CHECK_FALSE(c.contains("image_size"));
  const em::io::Json d = Hyperparameters::defaults(Algo::detection).to_json();
  CHECK(d.at("threshold") == 0.5);
  CHECK(d.at("augmentation") == "detr");
  CHECK_FALSE(d.contains("input_size"));
}

TEST_CASE("classification trains on batches of at least 2 and whole epochs; the others on any",
          "[train][hyperparameters]") {
  Hyperparameters c = Hyperparameters::defaults(Algo::classification);
  c.set("per_device_train_batch_size", "1");
  REQUIRE_THROWS_WITH(c.validate(), "hyperparameter per_device_train_batch_size: invalid value '1' (expected an "
                                    "integer in [2, inf) for classification)");
  c = Hyperparameters::defaults(Algo::classification);
  c.set("num_train_epochs", "1.5");
  REQUIRE_THROWS_WITH(c.validate(), "hyperparameter num_train_epochs: invalid value '1.5' (expected an integer in "
                                    "[1, inf) for classification)");
  Hyperparameters s = Hyperparameters::defaults(Algo::segmentation);
  s.set("per_device_train_batch_size", "1");
  s.set("num_train_epochs", "0.5");
  CHECK_NOTHROW(s.validate());
}

TEST_CASE("load_best_model_at_end and early stopping without evaluations are refused, as HF Trainer refuses them",
          "[train][hyperparameters]") {
  Hyperparameters hp = Hyperparameters::defaults(Algo::classification);
  hp.learning_rate = 1e-3;
  hp.eval_strategy = "no";
  CHECK_NOTHROW(hp.validate());
  hp.load_best_model_at_end = true;
  CHECK_THROWS_AS(hp.validate(), em::UsageError);
  CHECK_THROWS_WITH(hp.validate(), Catch::Contains("load_best_model_at_end") && Catch::Contains("eval_strategy is no"));
  hp.load_best_model_at_end = false;
  hp.early_stopping_patience = 2;
  CHECK_THROWS_WITH(hp.validate(), Catch::Contains("early_stopping_patience 2") && Catch::Contains("eval_strategy is no"));
  hp.eval_strategy = "steps";
  hp.load_best_model_at_end = true;
  CHECK_NOTHROW(hp.validate());
}

TEST_CASE("HF Trainer's options are hyperparameters with HF's defaults, saved in hyperparameters.json",
          "[train][hyperparameters]") {
  for (Algo algo : {Algo::classification, Algo::segmentation, Algo::detection}) {
    const Hyperparameters hp = Hyperparameters::defaults(algo);
    CHECK(hp.gradient_accumulation_steps == 1);
    CHECK(hp.max_steps == -1);
    CHECK(hp.save_strategy == "steps");
    CHECK(hp.early_stopping_threshold == 0.0);
    // metric_for_best_model defaults to the algorithm's main metric, greater is better.
    CHECK(hp.metric_for_best_model == em::algo_info(algo).main_metric);
    CHECK(hp.best_metric_greater());
    const em::io::Json j = hp.to_json();
    for (const char* key : {"gradient_accumulation_steps", "max_steps", "save_strategy", "metric_for_best_model",
                            "greater_is_better", "early_stopping_threshold"}) {
      INFO(key);
      CHECK(j.contains(key));
    }
  }
  Hyperparameters hp = Hyperparameters::defaults(Algo::detection);
  hp.set_json("gradient_accumulation_steps", em::io::Json("4"), "hp.json");
  hp.set("max_steps", "120");
  hp.set("save_strategy", "epoch");
  hp.set("metric_for_best_model", "eval_AP50");
  hp.set("early_stopping_threshold", "0.001");
  CHECK(hp.gradient_accumulation_steps == 4);
  CHECK(hp.max_steps == 120);
  CHECK(hp.best_metric_key() == "AP50");
  CHECK(hp.to_json()["metric_for_best_model"] == "eval_AP50");
  hp.set("metric_for_best_model", "");  // a platform's empty string: the default
  CHECK(hp.metric_for_best_model == "AP");
  CHECK_THROWS_WITH(hp.set("gradient_accumulation_steps", "0"), Contains("gradient_accumulation_steps: invalid value '0'"));
  CHECK_THROWS_WITH(hp.set("max_steps", "0"),
                    "hyperparameter max_steps: invalid value '0' (expected -1 (train num_train_epochs) or an integer "
                    "in [1, inf))");
  CHECK_THROWS_AS(hp.set("max_steps", "-2"), em::UsageError);
  CHECK_THROWS_WITH(hp.set("save_strategy", "best"), Contains("expected one of no, epoch, steps"));
  CHECK_THROWS_AS(hp.set("early_stopping_threshold", "-0.1"), em::UsageError);
}

TEST_CASE("greater_is_better defaults by the metric's name as HF's: false for a name ending in loss, else true; given, "
          "it wins",
          "[train][hyperparameters]") {
  Hyperparameters hp = Hyperparameters::defaults(Algo::classification);
  for (const char* lower : {"loss", "eval_loss"}) {
    hp.set("metric_for_best_model", lower);
    CHECK_FALSE(hp.best_metric_greater());
    CHECK(hp.best_metric_key() == "loss");
    CHECK(hp.to_json()["greater_is_better"] == false);
  }
  hp.set("metric_for_best_model", "eval_f1");
  CHECK(hp.best_metric_greater());
  CHECK(hp.best_metric_key() == "f1");
  hp.set("greater_is_better", "false");
  CHECK_FALSE(hp.best_metric_greater());
  hp.set("greater_is_better", "");  // unset again: by the name
  CHECK(hp.best_metric_greater());
}

TEST_CASE("the combinations HF Trainer refuses are usage errors", "[train][hyperparameters]") {
  auto base = [] {
    Hyperparameters hp = Hyperparameters::defaults(Algo::classification);
    hp.learning_rate = 1e-3;
    return hp;
  };
  Hyperparameters hp = base();
  hp.load_best_model_at_end = true;  // eval_strategy epoch, save_strategy steps
  CHECK_THROWS_WITH(hp.validate(), Contains("save_strategy (steps) must match eval_strategy (epoch)") &&
                                       Contains("--save_strategy epoch"));
  hp.save_strategy = "epoch";
  CHECK_NOTHROW(hp.validate());
  hp.eval_strategy = "steps";
  CHECK_THROWS_WITH(hp.validate(), Contains("save_strategy (epoch) must match eval_strategy (steps)"));
  hp.save_strategy = "steps";
  hp.save_steps = 500;
  hp.eval_steps = 200;
  CHECK_THROWS_WITH(hp.validate(), Contains("save_steps 500 is not a multiple of eval_steps 200"));
  hp.eval_steps = 250;
  CHECK_NOTHROW(hp.validate());
  hp.eval_steps = 0;  // = save_steps
  CHECK_NOTHROW(hp.validate());

  hp = base();
  hp.early_stopping_threshold = 0.01;
  CHECK_THROWS_WITH(hp.validate(), Contains("early_stopping_threshold 0.01 applies to early stopping, which is off"));
  hp.early_stopping_patience = 3;
  CHECK_NOTHROW(hp.validate());  // without load_best_model_at_end: a warning, as HF's
}
