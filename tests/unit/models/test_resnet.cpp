// ResNet: parity with HF transformers on the shared fixtures, HF parameter names for the built-in models,
// config.json in and out, channels-last and bf16 autocast.
#include <catch2/catch.hpp>


#include <torch/torch.h>

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/model_io.hpp"
#include "em/models/resnet.hpp"
#include "test_support.hpp"
#include "unit/models/model_test_support.hpp"

using em::models::ResNetConfig;
using em::models::ResNetForImageClassification;
using Catch::Matchers::Contains;
using em::test::golden_names;
using em::test::max_abs_diff;
using em::test::names_and_shapes;

namespace {

ResNetConfig tiny_config(int64_t labels = 3, const std::string& layer_type = "bottleneck") {
  ResNetConfig c;
  c.embedding_size = 8;
  c.hidden_sizes = {16, 32};
  c.depths = {1, 2};
  c.layer_type = layer_type;
  c.set_labels(em::test::numbered_labels(labels));
  return c;
}

// Loads a fixture folder the way a user's HF model folder is loaded (config.json + model.safetensors, strict).
ResNetForImageClassification load_fixture(const std::filesystem::path& dir) {
  auto config = ResNetConfig::from_json(em::io::read_json_file((dir / "config.json").string()),
                                        (dir / "config.json").string());
  ResNetForImageClassification model(config);
  em::models::load_state_strict(*model, em::tensor::load_safetensors((dir / "model.safetensors").string()),
                                (dir / "model.safetensors").string());
  model->eval();
  return model;
}

void check_fixture(const std::string& name) {
  auto dir = em::test::shared_path("fixtures/" + name);
  if (!dir) return;
  auto model = load_fixture(*dir);
  auto input = em::tensor::load_safetensors((*dir / "input.safetensors").string()).at("pixel_values");
  auto expected = em::tensor::load_safetensors((*dir / "expected.safetensors").string()).at("logits");
  torch::NoGradGuard no_grad;
  auto logits = model->forward(input);
  REQUIRE(logits.sizes() == expected.sizes());
  REQUIRE(logits.scalar_type() == expected.scalar_type());
  const double diff = max_abs_diff(logits, expected);
  INFO(name << ": max |logits - HF| = " << diff);
  CHECK(diff <= 1e-4);

  // Channels-last weights and input compute the same function.
  em::models::to_channels_last(*model);
  auto cl = model->forward(input.contiguous(torch::MemoryFormat::ChannelsLast));
  const double diff_cl = max_abs_diff(cl, expected);
  INFO(name << " channels-last: max |logits - HF| = " << diff_cl);
  CHECK(diff_cl <= 1e-4);
}

}  // namespace

TEST_CASE("resnet-tiny (bottleneck) matches HF transformers' logits within 1e-4", "[models][resnet]") {
  check_fixture("resnet-tiny");
}

TEST_CASE("resnet-basic-tiny (basic blocks, identity shortcut) matches HF transformers' logits within 1e-4",
          "[models][resnet]") {
  check_fixture("resnet-basic-tiny");
}

TEST_CASE("built-in resnet-50 and resnet-18 have exactly HF's parameter and buffer names and shapes",
          "[models][resnet]") {
  for (auto [builtin, golden] : {std::pair<std::string, std::string>{"resnet-50", "resnet50_hf_names.txt"},
                                 {"resnet-18", "resnet18_hf_names.txt"}}) {
    INFO(builtin);
    auto config = ResNetConfig::builtin(builtin);
    config.set_labels(em::test::numbered_labels(1000, "n"));
    ResNetForImageClassification model(config);
    auto ours = names_and_shapes(*model);
    auto theirs = golden_names(golden);
    REQUIRE(ours.size() == theirs.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      INFO(i);
      CHECK(ours[i] == theirs[i]);
    }
  }
}

TEST_CASE("built-in configs carry microsoft/resnet-* architectures and unknown names are usage errors",
          "[models][resnet]") {
  CHECK(ResNetConfig::builtin_names() ==
        std::vector<std::string>{"resnet-18", "resnet-34", "resnet-50", "resnet-101", "resnet-152"});
  CHECK(ResNetConfig::builtin("resnet-34").depths == std::vector<int64_t>{3, 4, 6, 3});
  CHECK(ResNetConfig::builtin("resnet-34").layer_type == "basic");
  CHECK(ResNetConfig::builtin("resnet-101").depths == std::vector<int64_t>{3, 4, 23, 3});
  CHECK(ResNetConfig::builtin("resnet-152").depths == std::vector<int64_t>{3, 8, 36, 3});
  CHECK(ResNetConfig::builtin("resnet-152").hidden_sizes == std::vector<int64_t>{256, 512, 1024, 2048});
  CHECK_THROWS_AS(ResNetConfig::builtin("resnet-51"), em::UsageError);
  CHECK_THROWS_WITH(ResNetConfig::builtin("resnet-51"), Contains("resnet-51") && Contains("resnet-50"));
}

TEST_CASE("resnet config.json round trip is HF-shaped and lossless", "[models][resnet]") {
  auto config = tiny_config(3);
  config.downsample_in_bottleneck = true;
  em::io::Json j = config.to_json();
  CHECK(j["model_type"] == "resnet");
  CHECK(j["architectures"] == em::io::Json::array({"ResNetForImageClassification"}));
  CHECK(j["id2label"] == em::io::Json{{"0", "class_0"}, {"1", "class_1"}, {"2", "class_2"}});
  CHECK(j["label2id"] == em::io::Json{{"class_0", 0}, {"class_1", 1}, {"class_2", 2}});
  auto back = ResNetConfig::from_json(j, "config.json");
  CHECK(back.to_json() == j);

  // The fixtures' HF config.json files read field for field.
  auto dir = em::test::shared_path("fixtures/resnet-tiny");
  if (!dir) return;
  auto fixture = em::io::read_json_file((*dir / "config.json").string());
  auto parsed = ResNetConfig::from_json(fixture, "config.json");
  auto written = parsed.to_json();
  for (auto it = fixture.begin(); it != fixture.end(); ++it) {
    INFO(it.key());
    CHECK(written.at(it.key()) == it.value());
  }
}

TEST_CASE("resnet config errors name the field, the value and what is valid", "[models][resnet]") {
  em::io::Json base = tiny_config().to_json();
  auto error_with = [&](const std::string& key, const em::io::Json& value) {
    return em::test::config_error_with<ResNetConfig>(base, key, value);
  };
  CHECK_THAT(error_with("layer_type", "wide"), Contains("cfg.json") && Contains("\"layer_type\"") &&
                                                    Contains("\"wide\"") && Contains("bottleneck"));
  CHECK_THAT(error_with("depths", {1, 2, 3}), Contains("\"depths\" (3 values)") && Contains("\"hidden_sizes\""));
  CHECK_THAT(error_with("depths", {1, 0}), Contains("\"depths\"") && Contains("positive integers"));
  CHECK_THAT(error_with("embedding_size", "64"), Contains("\"embedding_size\"") && Contains("\"64\""));
  CHECK_THAT(error_with("hidden_act", "mish"), Contains("unsupported activation \"mish\""));
  CHECK_THAT(error_with("model_type", "vit"), Contains("\"model_type\"") && Contains("\"vit\""));
  CHECK_THAT(error_with("id2label", {{"0", "a"}, {"2", "b"}}), Contains("key \"2\""));
  CHECK_THAT(error_with("label2id", {{"class_0", 1}}), Contains("\"label2id\""));
  CHECK_THAT(error_with("downsample_in_first_stage", 1), Contains("\"downsample_in_first_stage\""));
  // HF's defaults apply to absent fields: num_labels 2, resnet-50 architecture.
  auto defaults = ResNetConfig::from_json(em::io::Json::object(), "cfg.json");
  CHECK(defaults.num_labels() == 2);
  CHECK(defaults.depths == std::vector<int64_t>{3, 4, 6, 3});
  CHECK(ResNetConfig::from_json({{"num_labels", 4}}, "cfg.json").id2label.back() == "LABEL_3");
}

TEST_CASE("resnet forward rejects pixel_values of the wrong channel count", "[models][resnet]") {
  ResNetForImageClassification model(tiny_config());
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 1, 32, 32})), Contains("[N, 3, H, W]") && Contains("1, 1, 32, 32"));
}

TEST_CASE("resnet trains: every parameter gets a gradient, in NCHW and channels-last alike", "[models][resnet]") {
  for (bool channels_last : {false, true}) {
    INFO("channels_last " << channels_last);
    torch::manual_seed(1);
    for (const std::string layer_type : {"bottleneck", "basic"}) {
      ResNetForImageClassification model(tiny_config(3, layer_type));
      if (channels_last) em::models::to_channels_last(*model);
      model->train();
      auto x = torch::randn({2, 3, 32, 32});
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      auto logits = model->forward(x);
      CHECK(logits.sizes() == torch::IntArrayRef({2, 3}));
      torch::nn::functional::cross_entropy(logits, torch::tensor({0, 2})).backward();
      for (const auto& p : model->named_parameters()) {
        INFO(p.key());
        REQUIRE(p.value().grad().defined());
        CHECK(p.value().grad().abs().sum().item<double>() > 0);
      }
      // Training mode updated the BatchNorm statistics.
      auto bn = model->named_buffers()["resnet.embedder.embedder.normalization.num_batches_tracked"];
      CHECK(bn.item<int64_t>() == 1);
    }
  }
}

TEST_CASE("resnet runs under bf16 autocast close to fp32", "[models][resnet]") {
  torch::manual_seed(2);
  ResNetForImageClassification model(tiny_config(4));
  model->eval();
  em::models::to_channels_last(*model);
  auto x = torch::randn({2, 3, 32, 32}).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard no_grad;
  auto reference = model->forward(x);
  torch::Tensor logits;
  {
    em::tensor::Bf16Autocast autocast(true);
    logits = model->forward(x);
  }
  CHECK(logits.sizes() == reference.sizes());
  CHECK(torch::isfinite(logits).all().item<bool>());
  const double scale = reference.abs().max().item<double>();
  CHECK(max_abs_diff(logits, reference) <= 0.05 * scale + 1e-2);
}
