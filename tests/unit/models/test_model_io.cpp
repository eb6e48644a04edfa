// Weights by HF name: strict loading, the model/ folder, --init with another head, channels-last conversion.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_io.hpp"
#include "em/models/preprocessor.hpp"
#include "em/models/resnet.hpp"
#include "test_support.hpp"

using em::models::ResNetConfig;
using em::models::ResNetForImageClassification;
using Catch::Matchers::Contains;

namespace {

ResNetConfig tiny(int64_t labels) {
  ResNetConfig c;
  c.embedding_size = 8;
  c.hidden_sizes = {16, 32};
  c.depths = {1, 1};
  std::vector<std::string> names;
  for (int64_t i = 0; i < labels; ++i) names.push_back("c" + std::to_string(i));
  c.set_labels(names);
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const em::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("state_of lists parameters and buffers by HF name without num_batches_tracked", "[models][model_io]") {
  ResNetForImageClassification model(tiny(3));
  auto state = em::models::state_of(*model);
  CHECK(state.count("classifier.1.weight"));
  CHECK(state.count("resnet.embedder.embedder.normalization.running_var"));
  for (const auto& [name, t] : state) CHECK_FALSE(Contains("num_batches_tracked").match(name));
  CHECK(state.size() == model->named_parameters().size() + model->named_buffers().size() - 9);  // 9 BatchNorms
}

TEST_CASE("strict loading names every missing, unexpected and wrongly shaped tensor", "[models][model_io]") {
  torch::manual_seed(0);
  ResNetForImageClassification source(tiny(3));
  auto state = em::models::state_of(*source);
  ResNetForImageClassification target(tiny(3));

  // A complete file loads (num_batches_tracked is optional) and the models then agree.
  em::models::load_state_strict(*target, state, "m.safetensors");
  source->eval();
  target->eval();
  auto x = torch::randn({1, 3, 32, 32});
  CHECK(torch::equal(source->forward(x), target->forward(x)));

  auto missing = state;
  missing.erase("resnet.encoder.stages.1.layers.0.shortcut.normalization.running_mean");
  CHECK_THAT(error_of([&] { em::models::load_state_strict(*target, missing, "m.safetensors"); }),
             Contains("m.safetensors") && Contains("1 missing from the file") &&
                 Contains("stages.1.layers.0.shortcut.normalization.running_mean"));
  auto extra = state;
  extra["resnet.pooler.weight"] = torch::ones({1});
  CHECK_THAT(error_of([&] { em::models::load_state_strict(*target, extra, "m.safetensors"); }),
             Contains("1 not in the model: resnet.pooler.weight"));
  auto shaped = state;
  shaped["classifier.1.weight"] = torch::ones({5, 32});
  CHECK_THAT(error_of([&] { em::models::load_state_strict(*target, shaped, "m.safetensors"); }),
             Contains("classifier.1.weight (file [5, 32] Float, model [3, 32] Float)"));
}

TEST_CASE("strict loading converts F16/BF16 files and keeps a channels-last model channels-last",
          "[models][model_io]") {
  ResNetForImageClassification source(tiny(2));
  auto state = em::models::state_of(*source);
  for (auto& [name, t] : state)
    if (t.is_floating_point()) t = t.to(torch::kBFloat16);
  ResNetForImageClassification target(tiny(2));
  em::models::to_channels_last(*target);
  em::models::load_state_strict(*target, state, "bf16.safetensors");
  // A copy of the handle: named_parameters() returns a temporary, so a reference into it would dangle.
  const torch::Tensor w = target->named_parameters()["resnet.embedder.embedder.convolution.weight"];
  CHECK(w.is_contiguous(torch::MemoryFormat::ChannelsLast));
  CHECK(w.scalar_type() == torch::kFloat32);
  CHECK(torch::equal(w, state.at("resnet.embedder.embedder.convolution.weight").to(torch::kFloat32)));
}

TEST_CASE("save_model_dir writes an HF folder that loads back to the same function", "[models][model_io]") {
  torch::manual_seed(3);
  ResNetForImageClassification model(tiny(3));
  em::models::to_channels_last(*model);  // written as standard contiguous NCHW all the same
  em::test::TempDir dir;
  const auto out = dir / "model";
  auto pre = em::models::PreprocessorConfig::classification(32);
  em::models::save_model_dir(out, model->config().to_json(), *model, pre.to_json());
  REQUIRE(std::filesystem::exists(out / "config.json"));
  REQUIRE(std::filesystem::exists(out / "model.safetensors"));
  REQUIRE(std::filesystem::exists(out / "preprocessor_config.json"));
  CHECK(std::distance(std::filesystem::directory_iterator(out), {}) == 3);

  auto config = ResNetConfig::from_json(em::io::read_json_file((out / "config.json").string()), "config.json");
  CHECK(config.id2label == model->config().id2label);
  ResNetForImageClassification again(config);
  auto file = em::tensor::read_safetensors((out / "model.safetensors").string());
  CHECK(file.metadata.at("format") == "pt");  // transformers' from_pretrained requires it
  em::models::load_state_strict(*again, file.tensors, "model.safetensors");
  model->eval();
  again->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 32, 32});
  CHECK(torch::allclose(model->forward(x), again->forward(x), 1e-5, 1e-6));
  CHECK(em::models::PreprocessorConfig::read((out / "preprocessor_config.json").string()).height == 32);
}

TEST_CASE("loading with --init: re-initialises a head of another label count, loads the body and ignores extras",
          "[models][model_io]") {
  torch::manual_seed(4);
  ResNetForImageClassification pretrained(tiny(5));
  em::test::TempDir dir;
  em::models::save_model_dir(dir / "pre", pretrained->config().to_json(), *pretrained);
  {
    // A bare .safetensors with one extra tensor (like a pooler) besides the model's.
    auto state = em::models::state_of(*pretrained);
    state["resnet.extra.weight"] = torch::ones({2});
    em::tensor::save_safetensors(dir / "bare.safetensors", state);
  }

  for (const auto& source : {(dir / "pre").string(), (dir / "bare.safetensors").string()}) {
    INFO(source);
    torch::manual_seed(5);
    ResNetForImageClassification model(tiny(3));
    const auto fresh_head = model->classifier->weight.clone();
    auto report = em::models::load_init_weights(*model, source);
    CHECK(report.reinitialised == std::vector<std::string>{"classifier.1.bias", "classifier.1.weight"});
    CHECK(report.missing.empty());
    CHECK(report.loaded.size() == em::models::state_of(*model).size() - 2);
    CHECK(torch::equal(model->classifier->weight, fresh_head));  // kept as built, not the 5-label head
    auto body = model->named_parameters()["resnet.encoder.stages.1.layers.0.layer.1.convolution.weight"];
    CHECK(torch::equal(body, pretrained->named_parameters()["resnet.encoder.stages.1.layers.0.layer.1.convolution.weight"]));
    if (source.find("bare") != std::string::npos) {
      CHECK(report.ignored == std::vector<std::string>{"resnet.extra.weight"});
      CHECK_FALSE(report.config.has_value());
    } else {
      CHECK(report.ignored.empty());
      REQUIRE(report.config.has_value());
      CHECK((*report.config)["model_type"] == "resnet");
    }
  }
}

TEST_CASE("loading with --init: maps a bare base-model checkpoint across HF's base_model_prefix", "[models][model_io]") {
  ResNetForImageClassification pretrained(tiny(3));
  em::tensor::TensorMap bare;  // what HF's ResNetModel saves: no "resnet." prefix, no classifier
  for (auto& [name, t] : em::models::state_of(*pretrained))
    if (name.rfind("resnet.", 0) == 0) bare[name.substr(7)] = t;
  ResNetForImageClassification model(tiny(3));
  CHECK_THROWS_WITH(em::models::load_init_tensors(*model, bare, "bare"), Contains("none of its"));
  auto report = em::models::load_init_tensors(*model, bare, "bare", {"resnet"});
  CHECK(report.missing == std::vector<std::string>{"classifier.1.bias", "classifier.1.weight"});
  CHECK(report.ignored.empty());
  CHECK(report.loaded.size() == bare.size());
}

TEST_CASE("loading with --init: errors name the path when nothing matches or nothing is there", "[models][model_io]") {
  em::test::TempDir dir;
  ResNetForImageClassification model(tiny(3));
  em::tensor::save_safetensors(dir / "other.safetensors", {{"encoder.layer.0.weight", torch::ones({4, 4})}});
  CHECK_THAT(error_of([&] { em::models::load_init_weights(*model, (dir / "other.safetensors").string()); }),
             Contains("other.safetensors") && Contains("none of its 1 tensors matches"));
  CHECK_THAT(error_of([&] { em::models::load_init_weights(*model, (dir / "nope").string()); }),
             Contains("nope: no such file or folder"));
  std::filesystem::create_directories(dir / "empty");
  CHECK_THAT(error_of([&] { em::models::load_init_weights(*model, (dir / "empty").string()); }),
             Contains("no model.safetensors"));
}

TEST_CASE("to_channels_last converts 4-D weights only", "[models][model_io]") {
  ResNetForImageClassification model(tiny(3));
  em::models::to_channels_last(*model);
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    if (p.value().dim() == 4) CHECK(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast));
    else CHECK(p.value().is_contiguous());
  }
}

TEST_CASE("cold loading fills a channels-last model built without initialisation, equal to strict loading",
          "[models][model_io]") {
  torch::manual_seed(8);
  ResNetForImageClassification source(tiny(3));
  em::test::TempDir dir;
  em::models::save_model_dir(dir / "m", source->config().to_json(), *source);

  ResNetForImageClassification cold{nullptr};
  {
    em::models::SkipInit skip;
    cold = ResNetForImageClassification(tiny(3));
  }
  em::models::to_channels_last(*cold, /*keep_values=*/false);
  em::models::load_model_weights_strict(*cold, dir / "m");
  for (const auto& [name, t] : em::models::state_of(*source)) {
    const torch::Tensor loaded = em::models::state_of(*cold).at(name);
    CHECK(torch::equal(loaded, t));
    if (t.dim() == 4) CHECK(loaded.is_contiguous(torch::MemoryFormat::ChannelsLast));
  }
  source->eval();
  cold->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  CHECK(torch::allclose(source->forward(x), cold->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)), 1e-5,
                        1e-6));

  // The same strictness as load_state_strict: another head is named, with both shapes.
  ResNetForImageClassification other(tiny(4));
  CHECK_THAT(error_of([&] { em::models::load_model_weights_strict(*other, dir / "m"); }),
             Contains("model.safetensors: weights do not fit") && Contains("classifier.1.weight (file [3, 32]"));
}

TEST_CASE("a sharded folder loads its shards, and an index entry outside the folder is refused", "[models][model_io][hostile]") {
  em::test::TempDir tmp;
  const auto dir = tmp / "model";
  std::filesystem::create_directories(dir);
  em::tensor::save_safetensors(dir / "a.safetensors", {{"x", torch::ones({2})}});
  em::tensor::save_safetensors(dir / "b.safetensors", {{"y", torch::zeros({3})}});
  em::io::write_file_atomic(dir / "model.safetensors.index.json",
                            R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  const auto loaded = em::models::load_model_weights(dir);
  CHECK(loaded.size() == 2);
  CHECK(loaded.at("y").sizes().vec() == std::vector<int64_t>{3});

  // The index names the file to open: "../" and absolute paths would read outside the model folder.
  em::tensor::save_safetensors(tmp / "outside.safetensors", {{"y", torch::zeros({3})}});
  em::io::write_file_atomic(dir / "model.safetensors.index.json",
                            R"({"weight_map": {"x": "a.safetensors", "y": "../outside.safetensors"}})");
  CHECK_THROWS_WITH(em::models::load_model_weights(dir),
                    Contains("\"weight_map\".\"y\"") && Contains("leaves"));
  em::io::write_file_atomic(dir / "model.safetensors.index.json",
                            R"({"weight_map": {"x": "/etc/passwd"}})");
  CHECK_THROWS_WITH(em::models::load_model_weights(dir), Contains("absolute path"));
}
