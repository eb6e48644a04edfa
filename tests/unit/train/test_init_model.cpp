// em-train --init (train/init_model): the architecture from the folder, the label head kept, reordered or left fresh
// by the labels, and a partial load refused unless --init_partial.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/models/detector.hpp"
#include "em/models/model_io.hpp"
#include "em/models/resnet.hpp"
#include "em/train/init_model.hpp"
#include "test_support.hpp"

using em::models::ResNetConfig;
using em::models::ResNetForImageClassification;
using em::train::init_model;
using em::train::InitHead;

namespace {

ResNetConfig tiny(std::vector<std::string> labels, std::vector<int64_t> hidden = {16, 32}) {
  ResNetConfig c;
  c.embedding_size = 8;
  c.hidden_sizes = hidden;
  c.depths = std::vector<int64_t>(hidden.size(), 1);
  c.set_labels(std::move(labels));
  return c;
}

const InitHead kClassifierHead{{"classifier."}, {"classifier.1.weight", "classifier.1.bias"}};

em::models::InitOptions resnet_options() {
  em::models::InitOptions o;
  o.base_model_prefix = "resnet";
  return o;
}

// A saved pretrained classifier for labels a, b, c (seed 1) in dir/pre.
ResNetForImageClassification save_pretrained(const std::filesystem::path& dir) {
  torch::manual_seed(1);
  ResNetForImageClassification pretrained(tiny({"a", "b", "c"}));
  em::models::save_model_dir(dir, pretrained->config().to_json(), *pretrained);
  return pretrained;
}

torch::Tensor logits(ResNetForImageClassification& m, const torch::Tensor& x) {
  m->eval();
  torch::NoGradGuard no_grad;
  return m->forward(x);
}

}  // namespace

TEST_CASE("init with the same labels keeps the whole checkpoint, head included", "[train][init]") {
  em::test::TempDir dir;
  auto pretrained = save_pretrained(dir / "pre");
  torch::manual_seed(2);
  ResNetForImageClassification model(tiny({"a", "b", "c"}));
  auto report = init_model(*model, (dir / "pre").string(), {"a", "b", "c"}, resnet_options(), kClassifierHead, false);
  CHECK(report.reinitialised.empty());
  CHECK(report.missing.empty());
  auto x = torch::randn({2, 3, 32, 32});
  CHECK(torch::allclose(logits(model, x), logits(pretrained, x), 0, 0));
}

TEST_CASE("init with the same labels in another order reorders the head's rows to the dataset's ids",
          "[train][init]") {
  em::test::TempDir dir;
  auto pretrained = save_pretrained(dir / "pre");
  torch::manual_seed(2);
  // The dataset names the same three classes in another order: its id 0 is the checkpoint's "c" (row 2), etc.
  ResNetForImageClassification model(tiny({"c", "a", "b"}));
  init_model(*model, (dir / "pre").string(), {"c", "a", "b"}, resnet_options(), kClassifierHead, false);
  auto x = torch::randn({2, 3, 32, 32});
  const auto theirs = logits(pretrained, x);
  const auto ours = logits(model, x);
  // The same function, with the outputs in the dataset's order: each class keeps its score.
  CHECK(torch::equal(ours.select(1, 0), theirs.select(1, 2)));
  CHECK(torch::equal(ours.select(1, 1), theirs.select(1, 0)));
  CHECK(torch::equal(ours.select(1, 2), theirs.select(1, 1)));
}

TEST_CASE("init with other labels of the same count leaves the head fresh and loads the rest", "[train][init]") {
  em::test::TempDir dir;
  auto pretrained = save_pretrained(dir / "pre");
  torch::manual_seed(2);
  ResNetForImageClassification model(tiny({"x", "y", "z"}));
  const auto fresh_weight = model->classifier->weight.clone();
  const auto fresh_bias = model->classifier->bias.clone();
  auto report = init_model(*model, (dir / "pre").string(), {"x", "y", "z"}, resnet_options(), kClassifierHead, false);
  CHECK(torch::equal(model->classifier->weight, fresh_weight));
  CHECK(torch::equal(model->classifier->bias, fresh_bias));
  CHECK(report.reinitialised.size() == 2);
  const std::string body = "resnet.encoder.stages.1.layers.0.layer.1.convolution.weight";
  CHECK(torch::equal(model->named_parameters()[body], pretrained->named_parameters()[body]));
}

TEST_CASE("init of another architecture is an error unless --init_partial", "[train][init]") {
  em::test::TempDir dir;
  save_pretrained(dir / "pre");
  ResNetForImageClassification wider(tiny({"a", "b", "c"}, {16, 48}));
  try {
    init_model(*wider, (dir / "pre").string(), {"a", "b", "c"}, resnet_options(), kClassifierHead, false);
    FAIL("no error");
  } catch (const em::UsageError& e) {
    CHECK_THAT(e.what(), Catch::Contains("outside the task head") && Catch::Contains("--init_partial") &&
                             Catch::Contains("resnet.encoder.stages.1"));
  }
  ResNetForImageClassification again(tiny({"a", "b", "c"}, {16, 48}));
  auto report = init_model(*again, (dir / "pre").string(), {"a", "b", "c"}, resnet_options(), kClassifierHead, true);
  CHECK_FALSE(report.reinitialised.empty());
  CHECK_FALSE(report.loaded.empty());
}

TEST_CASE("the training architecture: --model_config, else --init's config.json of the algorithm's type",
          "[train][init]") {
  em::test::TempDir dir;
  save_pretrained(dir / "pre");
  const std::string pre = (dir / "pre").string();
  CHECK(em::train::training_model_config("resnet-18", pre, em::Algo::classification) == "resnet-18");
  CHECK(em::train::training_model_config("", "", em::Algo::classification).empty());
  CHECK(em::train::training_model_config("", pre, em::Algo::classification) == (dir / "pre" / "config.json").string());
  em::io::write_file_atomic(dir / "bare.safetensors", "x");
  CHECK(em::train::training_model_config("", (dir / "bare.safetensors").string(), em::Algo::classification).empty());
  CHECK_THROWS_AS(em::train::training_model_config("", pre, em::Algo::detection), em::UsageError);
}

TEST_CASE("DETR: reordering the labels moves the label rows and keeps the no-object row last", "[train][init]") {
  em::test::TempDir dir;
  torch::manual_seed(1);
  auto pretrained = em::models::Detector::create("detr-resnet-18-tiny", {"cat", "dog"}, 64, 0.5);
  pretrained.save(dir / "pre");
  torch::manual_seed(2);
  auto model = em::models::Detector::create("detr-resnet-18-tiny", {"dog", "cat"}, 64, 0.5);
  em::models::InitOptions o;
  o.base_model_prefix = "model";
  init_model(*model.model, (dir / "pre").string(), {"dog", "cat"}, o,
             {{"class_labels_classifier."}, {"class_labels_classifier.weight", "class_labels_classifier.bias"}}, false);
  const auto& a = pretrained.model->class_labels_classifier;
  const auto& b = model.model->class_labels_classifier;
  CHECK(torch::equal(b->weight[0], a->weight[1]));
  CHECK(torch::equal(b->weight[1], a->weight[0]));
  CHECK(torch::equal(b->weight[2], a->weight[2]));  // no-object
  CHECK(torch::equal(b->bias, torch::stack({a->bias[1], a->bias[0], a->bias[2]})));
}
