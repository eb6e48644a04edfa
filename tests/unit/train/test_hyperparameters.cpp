// The hyperparameter table against the platform's table (docs/training.md): defaults per algorithm, which
// parameters apply where, and what hyperparameters.json lists.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/train/hyperparameters.hpp"

using em::Algo;
using em::train::Hyperparameters;

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
