// SegFormer: parity with HF transformers on the shared fixture, HF parameter names for mit-b0/b3, config.json in
// and out, --init from encoder-only and full checkpoints, stochastic depth, the training loss, channels-last, bf16.
#include <catch2/catch.hpp>

#include <fstream>

#include <torch/torch.h>

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/model_io.hpp"
#include "em/models/segformer.hpp"
#include "test_support.hpp"
#include "unit/models/model_test_support.hpp"

using em::models::SegformerConfig;
using em::models::SegformerForSemanticSegmentation;
using Catch::Matchers::Contains;
using em::test::golden_names;
using em::test::max_abs_diff;
using em::test::names_and_shapes;

namespace {

// Two stages (one and two layers), both attention kinds (sr 2 and 1): fast enough for training tests.
SegformerConfig tiny_config(int64_t labels = 3) {
  SegformerConfig c = em::test::tiny_segformer_config({1, 2});
  c.set_labels(em::test::numbered_labels(labels));
  return c;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("segformer-tiny matches HF transformers' logits within 1e-4, in NCHW and channels-last",
          "[models][segformer]") {
  auto dir = em::test::shared_path("fixtures/segformer-tiny");
  if (!dir) return;
  // Loaded as a user's HF model folder: config.json through from_json, model.safetensors strictly.
  const std::string config_path = (*dir / "config.json").string();
  auto config = SegformerConfig::from_json(em::io::read_json_file(config_path), config_path);
  SegformerForSemanticSegmentation model(config);
  em::models::load_state_strict(*model, em::tensor::load_safetensors((*dir / "model.safetensors").string()),
                                (*dir / "model.safetensors").string());
  model->eval();
  auto input = em::tensor::load_safetensors((*dir / "input.safetensors").string()).at("pixel_values");
  auto expected = em::tensor::load_safetensors((*dir / "expected.safetensors").string()).at("logits");
  torch::NoGradGuard no_grad;

  auto logits = model->forward(input);
  REQUIRE(logits.sizes() == expected.sizes());  // [2, 6, 16, 24]: H/4 x W/4, not upsampled
  REQUIRE(logits.scalar_type() == expected.scalar_type());
  const double diff = max_abs_diff(logits, expected);
  WARN("segformer-tiny: max |logits - HF| = " << diff);
  CHECK(diff <= 1e-4);

  em::models::to_channels_last(*model);
  auto cl = model->forward(input.contiguous(torch::MemoryFormat::ChannelsLast));
  const double diff_cl = max_abs_diff(cl, expected);
  WARN("segformer-tiny channels-last: max |logits - HF| = " << diff_cl);
  CHECK(diff_cl <= 1e-4);
}

TEST_CASE("built-in mit-b0 and mit-b3 with 150 labels have exactly HF's parameter and buffer names and shapes",
          "[models][segformer]") {
  for (auto [builtin, golden] : {std::pair<std::string, std::string>{"mit-b0", "segformer_b0_hf_names.txt"},
                                 {"mit-b3", "segformer_b3_hf_names.txt"}}) {
    INFO(builtin);
    auto config = SegformerConfig::builtin(builtin);
    config.set_labels(em::test::numbered_labels(150, "ade_"));
    SegformerForSemanticSegmentation model(config);
    auto ours = names_and_shapes(*model);
    auto theirs = golden_names(golden);
    CHECK(ours.size() == theirs.size());
    for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
      INFO(i);
      CHECK(ours[i] == theirs[i]);
    }
    // The count the fixture makers checked for segformer-b3 against HF (without num_batches_tracked).
    if (builtin == "mit-b3") CHECK(em::models::state_of(*model).size() == 643);
  }
}

TEST_CASE("built-in configs carry nvidia/mit-b* architectures and unknown names are usage errors",
          "[models][segformer]") {
  CHECK(SegformerConfig::builtin_names() ==
        std::vector<std::string>{"mit-b0", "mit-b1", "mit-b2", "mit-b3", "mit-b4", "mit-b5"});
  using V = std::vector<int64_t>;
  struct Row {
    const char* name;
    V hidden, depths;
    int64_t decoder;
  };
  for (const Row& r : {Row{"mit-b0", {32, 64, 160, 256}, {2, 2, 2, 2}, 256},
                       Row{"mit-b1", {64, 128, 320, 512}, {2, 2, 2, 2}, 256},
                       Row{"mit-b2", {64, 128, 320, 512}, {3, 4, 6, 3}, 768},
                       Row{"mit-b3", {64, 128, 320, 512}, {3, 4, 18, 3}, 768},
                       Row{"mit-b4", {64, 128, 320, 512}, {3, 8, 27, 3}, 768},
                       Row{"mit-b5", {64, 128, 320, 512}, {3, 6, 40, 3}, 768}}) {
    INFO(r.name);
    auto c = SegformerConfig::builtin(r.name);
    CHECK(c.hidden_sizes == r.hidden);
    CHECK(c.depths == r.depths);
    CHECK(c.decoder_hidden_size == r.decoder);
    CHECK(c.num_attention_heads == V{1, 2, 5, 8});
    CHECK(c.sr_ratios == V{8, 4, 2, 1});
    CHECK(c.patch_sizes == V{7, 3, 3, 3});
    CHECK(c.strides == V{4, 2, 2, 2});
    CHECK(c.mlp_ratios == V{4, 4, 4, 4});
  }
  CHECK_THROWS_AS(SegformerConfig::builtin("mit-b6"), em::UsageError);
  CHECK_THROWS_WITH(SegformerConfig::builtin("mit-b6"), Contains("mit-b6") && Contains("mit-b3"));
}

TEST_CASE("segformer config.json round trip is HF-shaped and lossless", "[models][segformer]") {
  auto config = tiny_config(3);
  config.drop_path_rate = 0.2;
  config.semantic_loss_ignore_index = -100;
  em::io::Json j = config.to_json();
  CHECK(j["model_type"] == "segformer");
  CHECK(j["architectures"] == em::io::Json::array({"SegformerForSemanticSegmentation"}));
  CHECK(j["id2label"] == em::io::Json{{"0", "class_0"}, {"1", "class_1"}, {"2", "class_2"}});
  CHECK(j["label2id"] == em::io::Json{{"class_0", 0}, {"class_1", 1}, {"class_2", 2}});
  for (const char* key : {"num_channels", "num_encoder_blocks", "depths", "sr_ratios", "hidden_sizes", "patch_sizes",
                          "strides", "num_attention_heads", "mlp_ratios", "hidden_act", "hidden_dropout_prob",
                          "attention_probs_dropout_prob", "classifier_dropout_prob", "initializer_range",
                          "drop_path_rate", "layer_norm_eps", "decoder_hidden_size", "semantic_loss_ignore_index",
                          "reshape_last_stage"}) {
    INFO(key);
    CHECK(j.contains(key));
  }
  auto back = SegformerConfig::from_json(j, "config.json");
  CHECK(back.to_json() == j);

  // The weights round trip through a model folder, strictly.
  em::test::TempDir tmp;
  torch::manual_seed(3);
  SegformerForSemanticSegmentation model(config);
  em::models::save_model_dir(tmp.path(), config.to_json(), *model);
  auto reread = SegformerConfig::from_json(em::io::read_json_file((tmp / "config.json").string()), "config.json");
  SegformerForSemanticSegmentation copy(reread);
  em::models::load_state_strict(*copy, em::tensor::load_safetensors((tmp / "model.safetensors").string()), "model");
  for (const auto& [name, t] : em::models::state_of(*model)) {
    INFO(name);
    CHECK(torch::equal(t, em::models::state_of(*copy).at(name)));
  }

  // The fixture's HF config.json reads field for field (layer_norm_eps 1e-6 included).
  auto dir = em::test::shared_path("fixtures/segformer-tiny");
  if (!dir) return;
  auto fixture = em::io::read_json_file((*dir / "config.json").string());
  auto written = SegformerConfig::from_json(fixture, "config.json").to_json();
  for (auto it = fixture.begin(); it != fixture.end(); ++it) {
    INFO(it.key());
    CHECK(written.at(it.key()) == it.value());
  }
}

TEST_CASE("segformer config errors name the field, the value and what is valid", "[models][segformer]") {
  em::io::Json base = tiny_config().to_json();
  auto error_with = [&](const std::string& key, const em::io::Json& value) {
    return em::test::config_error_with<SegformerConfig>(base, key, value);
  };
  CHECK_THAT(error_with("depths", {1, 2, 3}),
             Contains("cfg.json") && Contains("\"depths\" has 3 values [1, 2, 3]") && Contains("\"num_encoder_blocks\" is 2"));
  CHECK_THAT(error_with("sr_ratios", {2, 0}), Contains("\"sr_ratios\"") && Contains("positive integers") &&
                                                   Contains("[2,0]"));
  CHECK_THAT(error_with("num_attention_heads", {3, 2}),
             Contains("\"num_attention_heads\"[0] = 3 does not divide \"hidden_sizes\"[0] = 8"));
  CHECK_THAT(error_with("hidden_act", "mish"), Contains("unsupported activation \"mish\""));
  CHECK_THAT(error_with("drop_path_rate", 1.5), Contains("\"drop_path_rate\"") && Contains("1.5") &&
                                                    Contains("[0, 1)"));
  CHECK_THAT(error_with("classifier_dropout_prob", "0.1"), Contains("\"classifier_dropout_prob\"") &&
                                                               Contains("expected a number") && Contains("\"0.1\""));
  CHECK_THAT(error_with("decoder_hidden_size", 0), Contains("\"decoder_hidden_size\"") && Contains(">= 1"));
  CHECK_THAT(error_with("reshape_last_stage", "yes"), Contains("\"reshape_last_stage\"") && Contains("true or false"));
  CHECK_THAT(error_with("model_type", "resnet"), Contains("\"model_type\"") && Contains("\"resnet\""));
  CHECK_THAT(error_with("architectures", {"ResNetForImageClassification"}), Contains("\"architectures\""));
  CHECK_THAT(error_with("id2label", {{"0", "a"}, {"2", "b"}}), Contains("key \"2\""));
  CHECK_THAT(error_with("label2id", {{"class_0", 1}}), Contains("\"label2id\""));
  CHECK_THAT(error_with("semantic_loss_ignore_index", 2.5), Contains("\"semantic_loss_ignore_index\""));
  // HF's defaults apply to absent fields: the b0 architecture with 2 labels; an nvidia/mit-b* config (image
  // classification architecture, reshape_last_stage false) reads too.
  auto defaults = SegformerConfig::from_json(em::io::Json::object(), "cfg.json");
  CHECK(defaults.num_labels() == 2);
  CHECK(defaults.to_json().dump() == SegformerConfig::builtin("mit-b0").to_json().dump());
  auto mit = SegformerConfig::from_json(
      {{"architectures", {"SegformerForImageClassification"}}, {"reshape_last_stage", false}, {"num_labels", 1000}},
      "mit-b0/config.json");
  CHECK(mit.num_labels() == 1000);
  CHECK_FALSE(mit.reshape_last_stage);
}

TEST_CASE("segformer forward gives logits at a quarter of the input size and rejects a wrong channel count",
          "[models][segformer]") {
  torch::manual_seed(4);
  SegformerForSemanticSegmentation model(tiny_config(3));
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK(model->forward(torch::randn({2, 3, 64, 96})).sizes() == torch::IntArrayRef({2, 3, 16, 24}));
  // Sizes not divisible by 4 round up, like the strided convs.
  CHECK(model->forward(torch::randn({1, 3, 50, 70})).sizes() == torch::IntArrayRef({1, 3, 13, 18}));
  CHECK(em::models::upsample_logits(torch::randn({1, 3, 13, 18}), 50, 70).sizes() ==
        torch::IntArrayRef({1, 3, 50, 70}));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 1, 32, 32})), Contains("[N, 3, H, W]") && Contains("1, 1, 32, 32"));
}

TEST_CASE("loading with --init: from an encoder-only nvidia/mit-b* checkpoint loads the encoder and ignores its ImageNet head",
          "[models][segformer]") {
  em::test::TempDir tmp;
  torch::manual_seed(5);
  SegformerForSemanticSegmentation source(tiny_config(3));
  // The mit-b* layout: segformer.encoder.* plus SegformerForImageClassification's classifier (1000 classes).
  em::tensor::TensorMap mit;
  for (const auto& [name, t] : em::models::state_of(*source))
    if (starts_with(name, "segformer.encoder.")) mit[name] = t + 0.5;  // values no fresh model has
  mit["classifier.weight"] = torch::randn({1000, 16});
  mit["classifier.bias"] = torch::randn({1000});
  em::tensor::save_safetensors((tmp / "mit.safetensors").string(), mit);

  SegformerForSemanticSegmentation model(tiny_config(3));
  auto fresh_head = em::models::state_of(*model).at("decode_head.classifier.weight").clone();
  auto report = em::models::load_init_weights(*model, (tmp / "mit.safetensors").string(), {"segformer"});
  CHECK(report.loaded.size() == mit.size() - 2);
  CHECK(report.ignored == std::vector<std::string>{"classifier.bias", "classifier.weight"});
  CHECK(report.reinitialised.empty());
  for (const auto& name : report.missing) CHECK(starts_with(name, "decode_head."));
  CHECK_FALSE(report.missing.empty());
  auto state = em::models::state_of(*model);
  for (const auto& [name, t] : mit) {
    if (!starts_with(name, "segformer.")) continue;
    INFO(name);
    CHECK(torch::equal(state.at(name), t));
  }
  CHECK(torch::equal(state.at("decode_head.classifier.weight"), fresh_head));

  // A bare SegformerModel checkpoint ("encoder.*", no prefix) maps onto the task model via base_model_prefix.
  em::tensor::TensorMap bare;
  for (const auto& [name, t] : mit)
    if (starts_with(name, "segformer.")) bare[name.substr(std::string("segformer.").size())] = t;
  em::tensor::save_safetensors((tmp / "bare.safetensors").string(), bare);
  SegformerForSemanticSegmentation model2(tiny_config(3));
  auto report2 = em::models::load_init_weights(*model2, (tmp / "bare.safetensors").string(), {"segformer"});
  CHECK(report2.loaded.size() == bare.size());
  CHECK(report2.ignored.empty());
}

TEST_CASE("loading with --init: from a full segmentation checkpoint loads everything but a head for another label count",
          "[models][segformer]") {
  em::test::TempDir tmp;
  torch::manual_seed(6);
  SegformerForSemanticSegmentation source(tiny_config(5));  // e.g. ADE20k's 150 labels vs our 3
  em::models::save_model_dir(tmp / "ckpt", source->config().to_json(), *source);
  SegformerForSemanticSegmentation model(tiny_config(3));
  auto report = em::models::load_init_weights(*model, (tmp / "ckpt").string(), {"segformer"});
  CHECK(report.config.has_value());
  CHECK(report.reinitialised ==
        std::vector<std::string>{"decode_head.classifier.bias", "decode_head.classifier.weight"});
  CHECK(report.missing.empty());
  CHECK(report.ignored.empty());
  auto ours = em::models::state_of(*model);
  auto theirs = em::models::state_of(*source);
  CHECK(torch::equal(ours.at("decode_head.linear_fuse.weight"), theirs.at("decode_head.linear_fuse.weight")));
  CHECK(torch::equal(ours.at("decode_head.batch_norm.running_var"), theirs.at("decode_head.batch_norm.running_var")));
}

TEST_CASE("stochastic depth follows HF's linear rule and is active only in training", "[models][segformer]") {
  auto config = tiny_config(3);
  config.drop_path_rate = 0.4;
  config.classifier_dropout_prob = 0.0;
  SegformerForSemanticSegmentation model(config);
  // torch.linspace(0, 0.4, 3) over the 3 layers: 0, 0.2, 0.4 (fp32 values, as HF takes them).
  const auto& blocks = model->segformer->blocks;
  CHECK(blocks[0][0]->drop_path == 0.0);
  CHECK(blocks[1][0]->drop_path == Approx(0.2).epsilon(1e-6));
  CHECK(blocks[1][1]->drop_path == Approx(0.4).epsilon(1e-6));

  torch::manual_seed(7);
  auto x = torch::randn({4, 3, 32, 32});
  torch::NoGradGuard no_grad;
  // The encoder has no BatchNorm and no dropout here, so train and eval differ by drop path alone.
  model->eval();
  auto eval_a = model->segformer->forward(x).back();
  auto eval_b = model->segformer->forward(x).back();
  CHECK(torch::equal(eval_a, eval_b));
  model->train();
  torch::manual_seed(8);
  auto train_a = model->segformer->forward(x).back();
  torch::manual_seed(8);
  auto train_b = model->segformer->forward(x).back();
  torch::manual_seed(9);
  auto train_c = model->segformer->forward(x).back();
  CHECK(torch::equal(train_a, train_b));  // torch's RNG decides, so a seed reproduces it
  CHECK_FALSE(torch::equal(train_a, eval_a));
  CHECK_FALSE(torch::equal(train_a, train_c));

  // Without drop path, training mode computes exactly the eval function in the encoder.
  config.drop_path_rate = 0.0;
  SegformerForSemanticSegmentation plain(config);
  plain->eval();
  auto plain_eval = plain->segformer->forward(x).back();
  plain->train();
  CHECK(torch::equal(plain->segformer->forward(x).back(), plain_eval));
}

TEST_CASE("segmentation loss equals HF's upsample-then-cross-entropy with ignore index 255",
          "[models][segformer]") {
  std::ifstream in(std::string(EM_SOURCE_DIR) + "/tests/golden/segformer_loss.json");
  REQUIRE(in.good());
  auto golden = em::io::Json::parse(in);
  // The inputs of scripts/golden/segformer_loss.py, rebuilt with the same formulas.
  auto make = [](int64_t labels_count) {
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    auto n = torch::arange(2, opts).view({2, 1, 1, 1});
    auto c = torch::arange(labels_count, opts).view({1, labels_count, 1, 1});
    auto y = torch::arange(5, opts).view({1, 1, 5, 1});
    auto x = torch::arange(7, opts).view({1, 1, 1, 7});
    auto logits = (torch::sin(0.37 * n + 1.3 * c + 0.11 * y + 0.07 * x) * 3).to(torch::kFloat32);
    auto ln = torch::arange(2).view({2, 1, 1});
    auto ly = torch::arange(17).view({1, 17, 1});
    auto lx = torch::arange(23).view({1, 1, 23});
    auto labels = (5 * ln + 3 * ly + lx).remainder(labels_count + 2);
    labels.masked_fill_(labels >= labels_count, 255);
    return std::make_pair(logits, labels);
  };
  for (int64_t count : {4, 1}) {
    INFO(count << " labels");
    auto [logits, labels] = make(count);
    const std::string tag = std::to_string(count) + "_labels";
    auto up = em::models::upsample_logits(logits, 17, 23);
    CHECK(up[1][0][9][13].item<double>() == Approx(golden.at("upsampled_" + tag + "_1_0_9_13").get<double>()).margin(1e-5));
    auto loss = em::models::segmentation_loss(logits, labels);
    CHECK(loss.dim() == 0);
    CHECK(loss.item<double>() == Approx(golden.at("loss_" + tag).get<double>()).margin(1e-5));
  }
  // A crop with every pixel ignored gives 0, not HF's NaN, and still backpropagates (zeros).
  auto logits = torch::randn({1, 4, 4, 4}, torch::requires_grad());
  auto loss = em::models::segmentation_loss(logits, torch::full({1, 16, 16}, 255, torch::kInt64));
  CHECK(loss.item<double>() == 0.0);
  loss.backward();
  CHECK(logits.grad().abs().sum().item<double>() == 0.0);
  // Constant logits: log(L) per valid pixel.
  CHECK(em::models::segmentation_loss(torch::zeros({1, 4, 2, 2}), torch::zeros({1, 8, 8}, torch::kInt64))
            .item<double>() == Approx(std::log(4.0)));
  CHECK_THROWS_WITH(em::models::segmentation_loss(torch::zeros({1, 4, 2, 2}), torch::zeros({1, 8, 8})),
                    Contains("int64") && Contains("Float"));
}

TEST_CASE("segformer trains: every parameter gets a gradient, in NCHW and channels-last alike", "[models][segformer]") {
  for (bool channels_last : {false, true}) {
    INFO("channels_last " << channels_last);
    torch::manual_seed(10);
    SegformerForSemanticSegmentation model(tiny_config(3));
    if (channels_last) em::models::to_channels_last(*model);
    model->train();
    auto x = torch::randn({2, 3, 32, 32});
    if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    auto labels = torch::randint(0, 3, {2, 32, 32}, torch::kInt64);
    labels.index_put_({0, torch::indexing::Slice(0, 8)}, 255);
    auto logits = model->forward(x);
    CHECK(logits.sizes() == torch::IntArrayRef({2, 3, 8, 8}));
    em::models::segmentation_loss(logits, labels).backward();
    for (const auto& p : model->named_parameters()) {
      INFO(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    }
    CHECK(model->named_buffers()["decode_head.batch_norm.num_batches_tracked"].item<int64_t>() == 1);
  }
}

TEST_CASE("segformer runs under bf16 autocast close to fp32", "[models][segformer]") {
  torch::manual_seed(11);
  auto config = tiny_config(4);
  config.initializer_range = 0.3;  // logits of order 1 (HF's 0.02 gives ~1e-3, which any error would pass)
  SegformerForSemanticSegmentation model(config);
  model->eval();
  em::models::to_channels_last(*model);
  auto x = torch::randn({2, 3, 64, 64}).contiguous(torch::MemoryFormat::ChannelsLast);
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
  INFO("bf16 vs fp32: max |diff| " << max_abs_diff(logits, reference) << ", max |logit| " << scale);
  CHECK(scale > 0.1);
  CHECK(max_abs_diff(logits, reference) <= 0.05 * scale);
  // The loss is fp32 whatever the logits are.
  CHECK(em::models::segmentation_loss(logits, torch::zeros({2, 64, 64}, torch::kInt64)).scalar_type() ==
        torch::kFloat32);
}
