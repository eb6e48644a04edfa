// DETR model: parity with the original DETR on the shared detr-tiny fixture, HF parameter names of detr-resnet-50,
// config.json in and out, frozen backbone parts, auxiliary outputs, bf16 autocast.
#include <catch2/catch.hpp>

#include <set>

#include <torch/torch.h>

#include "em/tensor/autocast.hpp"
#include "em/core/error.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/detr.hpp"
#include "em/models/model_io.hpp"
#include "test_support.hpp"
#include "unit/models/model_test_support.hpp"

using em::models::DetrConfig;
using em::models::DetrForObjectDetection;
using Catch::Matchers::Contains;
using em::test::max_abs_diff;
using em::test::names_and_shapes;

namespace {

// A small, fast DETR: resnet18 backbone, d_model 32, 2 + 2 layers.
DetrConfig small_config(int64_t labels = 3) {
  DetrConfig c = DetrConfig::builtin("detr-resnet-18-tiny");
  c.d_model = 32;
  c.encoder_attention_heads = c.decoder_attention_heads = 2;
  c.encoder_ffn_dim = c.decoder_ffn_dim = 64;
  c.num_queries = 6;
  c.set_labels(em::test::numbered_labels(labels));
  return c;
}

}  // namespace

TEST_CASE("detr-tiny matches the original DETR's logits and boxes within 1e-4 (strict HF-named load)", "[detr]") {
  auto dir = em::test::shared_path("fixtures/detr-tiny");
  if (!dir) return;
  const auto config_path = (*dir / "config.json").string();
  auto config = DetrConfig::from_json(em::io::read_json_file(config_path), config_path);
  DetrForObjectDetection model(config);
  em::models::load_state_strict(*model, em::tensor::load_safetensors((*dir / "model.safetensors").string()),
                                (*dir / "model.safetensors").string());
  model->eval();
  auto input = em::tensor::load_safetensors((*dir / "input.safetensors").string());
  auto expected = em::tensor::load_safetensors((*dir / "expected.safetensors").string());
  const torch::Tensor& pixel_values = input.at("pixel_values");
  const torch::Tensor& pixel_mask = input.at("pixel_mask");
  torch::NoGradGuard no_grad;

  auto out = model->forward(pixel_values, pixel_mask);
  for (auto [name, got] : {std::pair<std::string, torch::Tensor>{"logits", out.logits}, {"pred_boxes", out.pred_boxes}}) {
    const torch::Tensor& want = expected.at(name);
    REQUIRE(got.sizes() == want.sizes());
    REQUIRE(got.scalar_type() == want.scalar_type());
    const double diff = max_abs_diff(got, want);
    INFO(name << ": max |ours - original DETR| = " << diff);
    CHECK(diff <= 1e-4);
  }
  CHECK(out.auxiliary_outputs.empty());  // the fixture's auxiliary_loss is false

  // Channels-last weights and input compute the same function.
  em::models::to_channels_last(*model);
  auto cl = model->forward(pixel_values.contiguous(torch::MemoryFormat::ChannelsLast), pixel_mask);
  INFO("channels-last: logits " << max_abs_diff(cl.logits, expected.at("logits")) << ", boxes "
                                << max_abs_diff(cl.pred_boxes, expected.at("pred_boxes")));
  CHECK(max_abs_diff(cl.logits, expected.at("logits")) <= 1e-4);
  CHECK(max_abs_diff(cl.pred_boxes, expected.at("pred_boxes")) <= 1e-4);

  // The mask matters (image 2 is padded): without it the outputs move far beyond the tolerance.
  auto unmasked = model->forward(pixel_values);
  CHECK(max_abs_diff(unmasked.logits, expected.at("logits")) > 1e-2);
}

TEST_CASE("detr-tiny's config.json reads field for field and writes back HF-shaped", "[detr]") {
  auto dir = em::test::shared_path("fixtures/detr-tiny");
  if (!dir) return;
  auto fixture = em::io::read_json_file((*dir / "config.json").string());
  auto parsed = DetrConfig::from_json(fixture, "config.json");
  CHECK(parsed.backbone == "resnet18");
  CHECK(parsed.num_labels() == 4);
  CHECK(parsed.threshold == 0.5);  // absent in HF configs: our default
  auto written = parsed.to_json();
  for (auto it = fixture.begin(); it != fixture.end(); ++it) {
    INFO(it.key());
    REQUIRE(written.contains(it.key()));
    CHECK(written.at(it.key()) == it.value());
  }
}

TEST_CASE("built-in detr-resnet-50 has exactly HF's parameter and buffer names and shapes", "[detr]") {
  auto config = DetrConfig::builtin("detr-resnet-50");
  std::vector<std::string> labels;
  for (int i = 0; i < 91; ++i) labels.push_back("n" + std::to_string(i));
  config.set_labels(labels);
  DetrForObjectDetection model(config);
  auto ours = names_and_shapes(*model);
  auto theirs = em::test::golden_names("detr_resnet50_hf_names.txt");
  CHECK(theirs.size() == 530);
  REQUIRE(ours.size() == theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    INFO(i);
    CHECK(ours[i] == theirs[i]);
  }
  // No num_batches_tracked anywhere: the frozen BatchNorms have exactly four buffers.
  for (const auto& b : model->named_buffers()) CHECK(b.key().find("num_batches_tracked") == std::string::npos);
}

TEST_CASE("only layer2..layer4 of the backbone train, and they form the backbone parameter group", "[detr]") {
  DetrForObjectDetection model(small_config());
  std::set<std::string> group;
  for (const auto& n : model->backbone_parameter_names()) group.insert(n);
  CHECK(!group.empty());
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    INFO(name);
    const bool backbone = name.rfind("model.backbone.", 0) == 0;
    const bool frozen = name == "model.backbone.conv_encoder.model.conv1.weight" ||
                        (backbone && name.find(".layer1.") != std::string::npos);
    CHECK(p.value().requires_grad() == !frozen);
    CHECK(group.count(name) == (backbone && !frozen ? 1u : 0u));
  }
  CHECK(!model->named_parameters()["model.backbone.conv_encoder.model.conv1.weight"].requires_grad());
  CHECK(model->named_parameters()["model.backbone.conv_encoder.model.layer2.0.conv1.weight"].requires_grad());
}

TEST_CASE("detr trains: trainable parameters get gradients, frozen ones and BatchNorm statistics do not", "[detr]") {
  torch::manual_seed(3);
  auto config = small_config();
  config.auxiliary_loss = true;
  DetrForObjectDetection model(config);
  model->train();
  auto bn_before = model->named_buffers()["model.backbone.conv_encoder.model.layer2.0.bn1.running_mean"].clone();
  auto x = torch::randn({2, 3, 64, 96});
  auto mask = torch::ones({2, 64, 96}, torch::kLong);
  mask.index_put_({1, torch::indexing::Slice(), torch::indexing::Slice(64, 96)}, 0);
  auto out = model->forward(x, mask);
  REQUIRE(out.logits.sizes() == torch::IntArrayRef({2, 6, 4}));
  REQUIRE(out.pred_boxes.sizes() == torch::IntArrayRef({2, 6, 4}));
  REQUIRE(out.auxiliary_outputs.size() == 1);  // decoder layers - 1
  CHECK(out.auxiliary_outputs[0].logits.sizes() == out.logits.sizes());
  CHECK(out.auxiliary_outputs[0].pred_boxes.sizes() == out.pred_boxes.sizes());
  CHECK(out.pred_boxes.min().item<float>() > 0);
  CHECK(out.pred_boxes.max().item<float>() < 1);
  auto loss = out.logits.logsumexp(-1).sum() + out.pred_boxes.sum() + out.auxiliary_outputs[0].logits.pow(2).sum();
  loss.backward();
  // At initialisation the first decoder layer's self-attention cannot learn yet: its input is the zero query, so
  // its values are v_proj's bias (0) and the attention pattern does not matter (as in the original DETR).
  auto idle_at_init = [](const std::string& name) {
    return name.rfind("model.decoder.layers.0.self_attn.", 0) == 0 ||
           name == "model.decoder.layers.0.self_attn_layer_norm.weight";
  };
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    if (idle_at_init(p.key())) continue;
    if (p.value().requires_grad()) {
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    } else {
      CHECK(!p.value().grad().defined());
    }
  }
  CHECK(torch::equal(bn_before, model->named_buffers()["model.backbone.conv_encoder.model.layer2.0.bn1.running_mean"]));
}

TEST_CASE("auxiliary_loss feeds the normalised state on as HF's DetrDecoder does", "[detr]") {
  // HF: with auxiliary_loss every layer's output goes through decoder.layernorm before the next layer, and the final
  // output gets it once more. So the two settings compute different final outputs from the same weights, and the
  // last auxiliary output (layer L-1 of L) is not the final one.
  torch::manual_seed(5);
  auto config = small_config();
  config.decoder_layers = 3;
  config.auxiliary_loss = false;
  DetrForObjectDetection plain(config);
  {
    // A non-trivial decoder.layernorm (at its init, LN(LN(x)) == LN(x) and the chains would coincide).
    torch::NoGradGuard no_grad;
    plain->model->decoder_layernorm->weight.uniform_(0.5, 1.5);
    plain->model->decoder_layernorm->bias.normal_(0, 0.1);
  }
  config.auxiliary_loss = true;
  DetrForObjectDetection aux(config);
  em::models::load_state_strict(*aux, em::models::state_of(*plain), "plain");
  plain->eval();
  aux->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  auto a = plain->forward(x);
  auto b = aux->forward(x);
  CHECK(a.auxiliary_outputs.empty());
  REQUIRE(b.auxiliary_outputs.size() == 2);
  CHECK(max_abs_diff(a.logits, b.logits) > 1e-4);
  // Layer 0's auxiliary output is LN(layer0(zeros)) in both chains: computed by hand from the plain model's layers.
  auto& m = plain->model;
  auto features = m->conv_encoder->forward(x);
  auto mask = torch::ones({1, features.size(2), features.size(3)}, torch::kBool);
  auto pos = m->position_embedding(mask);
  auto tokens = m->input_projection->forward(features).flatten(2).permute({0, 2, 1});
  auto memory = tokens;
  for (auto& layer : m->encoder_layers) memory = layer->forward(memory, pos, mask.logical_not().flatten(1));
  auto query_pos = m->query_position_embeddings->weight.unsqueeze(0);
  auto h0 = m->decoder_layers[0]->forward(torch::zeros_like(query_pos), query_pos, memory, pos,
                                          mask.logical_not().flatten(1));
  auto logits0 = plain->class_labels_classifier->forward(m->decoder_layernorm->forward(h0));
  CHECK(max_abs_diff(logits0, b.auxiliary_outputs[0].logits) < 1e-5);
}

TEST_CASE("detr runs under bf16 autocast close to fp32", "[detr]") {
  torch::manual_seed(2);
  DetrForObjectDetection model(small_config());
  model->eval();
  em::models::to_channels_last(*model);
  auto x = torch::randn({2, 3, 64, 64}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto mask = torch::ones({2, 64, 64}, torch::kLong);
  mask.index_put_({0, torch::indexing::Slice(48, 64)}, 0);
  torch::NoGradGuard no_grad;
  auto reference = model->forward(x, mask);
  em::models::DetrOutput out;
  {
    em::tensor::Bf16Autocast autocast(true);
    out = model->forward(x, mask);
  }
  REQUIRE(out.logits.sizes() == reference.logits.sizes());
  CHECK(torch::isfinite(out.logits).all().item<bool>());
  CHECK(max_abs_diff(out.logits, reference.logits) <= 0.05 * reference.logits.abs().max().item<double>() + 0.05);
  CHECK(max_abs_diff(out.pred_boxes, reference.pred_boxes) <= 0.05);
}

TEST_CASE("detr config: built-ins, dilation, learned positions and HF round trip", "[detr]") {
  CHECK(DetrConfig::builtin_names().front() == "detr-resnet-50");
  auto r50 = DetrConfig::builtin("detr-resnet-50");
  CHECK(r50.backbone == "resnet50");
  CHECK(r50.d_model == 256);
  CHECK(r50.num_queries == 100);
  CHECK(r50.encoder_layers == 6);
  CHECK(r50.decoder_ffn_dim == 2048);
  CHECK(r50.eos_coefficient == 0.1);
  CHECK(r50.auxiliary_loss);
  CHECK(DetrConfig::builtin("detr-resnet-101").backbone == "resnet101");
  CHECK(DetrConfig::builtin("detr-resnet-50-dc5").dilation);
  CHECK_THROWS_AS(DetrConfig::builtin("detr-resnet-51"), em::UsageError);
  CHECK_THROWS_WITH(DetrConfig::builtin("detr-resnet-51"), Contains("detr-resnet-51") && Contains("detr-resnet-50"));

  auto c = small_config();
  c.threshold = 0.7;
  c.dilation = true;
  em::io::Json j = c.to_json();
  CHECK(j["model_type"] == "detr");
  CHECK(j["architectures"] == em::io::Json::array({"DetrForObjectDetection"}));
  CHECK(j["threshold"] == 0.7);
  CHECK(j["use_pretrained_backbone"] == false);
  CHECK(j["label2id"] == em::io::Json{{"class_0", 0}, {"class_1", 1}, {"class_2", 2}});
  CHECK(DetrConfig::from_json(j, "config.json").to_json() == j);
  // HF's own backbone_kwargs spelling of dilation and channels.
  em::io::Json kw = j;
  kw["dilation"] = false;
  kw["backbone_kwargs"] = {{"out_indices", {1, 2, 3, 4}}, {"in_chans", 3}, {"output_stride", 16}};
  CHECK(DetrConfig::from_json(kw, "config.json").dilation);

  // Dilation (DC5) trades the last stride for dilation: stride 16 instead of 32.
  torch::NoGradGuard no_grad;
  DetrForObjectDetection dc5(c);
  CHECK(dc5->model->conv_encoder->forward(torch::zeros({1, 3, 64, 64})).sizes() == torch::IntArrayRef({1, 512, 4, 4}));
  DetrForObjectDetection plain(small_config());
  CHECK(plain->model->conv_encoder->forward(torch::zeros({1, 3, 64, 64})).sizes() ==
        torch::IntArrayRef({1, 512, 2, 2}));

  // "learned" position embeddings live under HF's names and run.
  auto learned = small_config();
  learned.position_embedding_type = "learned";
  DetrForObjectDetection lm(learned);
  auto params = lm->named_parameters();
  REQUIRE(params.contains("model.backbone.position_embedding.row_embeddings.weight"));
  CHECK(params["model.backbone.position_embedding.column_embeddings.weight"].sizes() == torch::IntArrayRef({50, 16}));
  lm->eval();
  CHECK(lm->forward(torch::randn({1, 3, 64, 64})).logits.sizes() == torch::IntArrayRef({1, 6, 4}));
}

TEST_CASE("a saved DETR folder loads back strictly and computes the same outputs", "[detr]") {
  torch::manual_seed(9);
  auto config = small_config(2);
  config.threshold = 0.3;
  DetrForObjectDetection model(config);
  model->eval();
  em::test::TempDir tmp;
  em::models::save_model_dir(tmp / "model", config.to_json(), *model);
  auto loaded_config = DetrConfig::from_json(em::io::read_json_file((tmp / "model" / "config.json").string()), "config");
  CHECK(loaded_config.threshold == 0.3);
  CHECK(loaded_config.to_json() == config.to_json());
  DetrForObjectDetection loaded(loaded_config);
  em::models::load_state_strict(*loaded, em::models::load_model_weights(tmp / "model"), "model.safetensors");
  loaded->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  auto a = model->forward(x), b = loaded->forward(x);
  CHECK(torch::equal(a.logits, b.logits));
  CHECK(torch::equal(a.pred_boxes, b.pred_boxes));
}

TEST_CASE("detr config errors name the field, the value and what is valid", "[detr]") {
  em::io::Json base = small_config().to_json();
  auto error_with = [&](const std::string& key, const em::io::Json& value) {
    return em::test::config_error_with<DetrConfig>(base, key, value);
  };
  CHECK_THAT(error_with("backbone", "resnet26"), Contains("cfg.json") && Contains("\"backbone\"") &&
                                                     Contains("resnet26") && Contains("resnet50"));
  CHECK_THAT(error_with("use_timm_backbone", false), Contains("\"use_timm_backbone\""));
  CHECK_THAT(error_with("d_model", 30), Contains("\"d_model\"") && Contains("30"));
  CHECK_THAT(error_with("encoder_attention_heads", 3), Contains("divisible by 3"));
  CHECK_THAT(error_with("num_queries", 0), Contains("\"num_queries\"") && Contains(">= 1"));
  CHECK_THAT(error_with("dropout", 1.5), Contains("\"dropout\"") && Contains("[0, 1)"));
  CHECK_THAT(error_with("activation_function", "mish"), Contains("\"mish\""));
  CHECK_THAT(error_with("position_embedding_type", "rope"), Contains("\"rope\""));
  CHECK_THAT(error_with("threshold", 2), Contains("\"threshold\""));
  CHECK_THAT(error_with("eos_coefficient", -1), Contains("\"eos_coefficient\""));
  CHECK_THAT(error_with("model_type", "resnet"), Contains("\"model_type\"") && Contains("\"resnet\""));
  CHECK_THAT(error_with("backbone_config", {{"model_type", "resnet"}}), Contains("\"backbone_config\""));
  CHECK_THAT(error_with("backbone_kwargs", {{"features_only", true}}), Contains("\"features_only\""));
  CHECK_THAT(error_with("id2label", {{"0", "a"}, {"2", "b"}}), Contains("key \"2\""));
  CHECK_THAT(error_with("num_channels", "3"), Contains("\"num_channels\"") && Contains("\"3\""));
  // HF's defaults apply to absent fields: detr-resnet-50's architecture with 2 labels.
  auto defaults = DetrConfig::from_json(em::io::Json::object(), "cfg.json");
  CHECK(defaults.num_labels() == 2);
  CHECK(defaults.backbone == "resnet50");
  CHECK(!defaults.auxiliary_loss);

  DetrForObjectDetection model(small_config());
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 1, 32, 32})), Contains("[N, 3, H, W]"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 3, 32, 32}), torch::ones({1, 32, 31})), Contains("pixel_mask"));
}
