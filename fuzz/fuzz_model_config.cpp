// libFuzzer target: a model folder's config.json, read as the tools read it. The loaders take the algorithm from
// model_type (config_fields' algo_of_config: em-predict, em-eval, em-serve) and then that family's
// Config::from_json; em-train's --model_config hands any file to its algorithm's from_json, so every family reads
// every input here. An accepted config must survive its own round trip (to_json, printed, parsed and read again gives
// an equal config) and write back every field it took as the file said it. The config readers include no LibTorch
// header, so this target compiles them beside em_base (fuzz/CMakeLists.txt).
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz_support.hpp"
#include "em/models/config_fields.hpp"
#include "em/models/detr_config.hpp"
#include "em/models/resnet_config.hpp"
#include "em/models/segformer_config.hpp"

namespace {

using em::Algo;
using em::io::Json;
using namespace em::models;

// Every member of each config, for the round trip's equality (a member added to a config belongs here too).
auto members(const ResNetConfig& c) {
  return std::tie(c.num_channels, c.embedding_size, c.hidden_sizes, c.depths, c.layer_type, c.hidden_act,
                  c.downsample_in_first_stage, c.downsample_in_bottleneck, c.id2label);
}
auto members(const SegformerConfig& c) {
  return std::tie(c.num_channels, c.num_encoder_blocks, c.depths, c.sr_ratios, c.hidden_sizes, c.patch_sizes,
                  c.strides, c.num_attention_heads, c.mlp_ratios, c.hidden_act, c.hidden_dropout_prob,
                  c.attention_probs_dropout_prob, c.classifier_dropout_prob, c.initializer_range, c.drop_path_rate,
                  c.layer_norm_eps, c.decoder_hidden_size, c.semantic_loss_ignore_index, c.reshape_last_stage,
                  c.id2label);
}
auto members(const DetrConfig& c) {
  return std::tuple_cat(
      std::tie(c.use_timm_backbone, c.backbone, c.use_pretrained_backbone, c.dilation, c.num_channels, c.num_queries,
               c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.decoder_attention_heads,
               c.encoder_ffn_dim, c.decoder_ffn_dim, c.activation_function, c.position_embedding_type),
      std::tie(c.dropout, c.attention_dropout, c.activation_dropout, c.encoder_layerdrop, c.decoder_layerdrop,
               c.init_std, c.init_xavier_std, c.auxiliary_loss, c.class_cost, c.bbox_cost, c.giou_cost,
               c.bbox_loss_coefficient, c.giou_loss_coefficient, c.eos_coefficient, c.mask_loss_coefficient,
               c.dice_loss_coefficient, c.threshold, c.id2label));
}

// Members a reader derives or normalises on purpose: the labels (keys like "01" or a num_labels become "0".."n-1";
// left to the round trip), what to_json always writes the same way, and DETR's fields that backbone_kwargs may set.
std::vector<std::string> derived(const ResNetConfig&, const Json&) {
  return {"architectures", "id2label", "label2id", "torch_dtype"};
}
std::vector<std::string> derived(const SegformerConfig&, const Json&) {
  return {"architectures", "id2label", "label2id", "torch_dtype"};
}
std::vector<std::string> derived(const DetrConfig&, const Json& input) {
  std::vector<std::string> names{"architectures",     "id2label",          "label2id",          "torch_dtype",
                                 "use_pretrained_backbone", "num_hidden_layers", "is_encoder_decoder"};
  if (auto kwargs = input.find("backbone_kwargs"); kwargs != input.end() && !kwargs->is_null())
    names.insert(names.end(), {"num_channels", "dilation"});
  return names;
}

// from_json + validate as a loader runs them; for an accepted config, the round trip. Returns whether it was accepted.
template <typename Config>
bool read_family(const Json& input) {
  std::optional<Config> config;
  em::fuzz::expect_clean([&] {
    Config c = Config::from_json(input, "config.json");
    c.validate("config.json");
    config = std::move(c);
  });
  if (!config) return false;
  const Json written = config->to_json();
  em::fuzz::check_written_as_read(input, written, derived(*config, input));
  em::fuzz::expect_accepted("a config's own to_json", [&] {
    const Json reread = em::io::parse_json(em::io::dump_json(written), "round trip");
    const Config again = Config::from_json(reread, "round trip");
    EM_FUZZ_CHECK(members(again) == members(*config));
    EM_FUZZ_CHECK(again.to_json() == written);
  });
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (em::fuzz::quiet_logs(), true);
  (void)quiet;
  std::optional<Json> input;
  const std::string text(em::fuzz::bytes_of(data, size));
  em::fuzz::expect_clean([&] { input = em::io::parse_json(text, "config.json"); });
  if (!input) return 0;

  // A num_labels past 1024 (up to config::kMaxLabels, 2^20) takes the code path of a small one, but the round trip
  // writes and re-reads an id2label and a label2id of that many keys, and io::Json (nlohmann's ordered_json) inserts
  // each key after a linear search: quadratic, 1.2 s for 1712 labels under the sanitizers, past libFuzzer's timeout
  // on a loaded machine (docs/fuzzing.md, "Left").
  const auto n = input->find("num_labels");  // end() when the input is not an object
  if (n != input->end() && n->is_number_integer() && n->get<int64_t>() > 1024 &&
      n->get<int64_t>() <= config::kMaxLabels)
    return 0;

  std::optional<Algo> algo;
  em::fuzz::expect_clean([&] { algo = config::algo_of_config(*input, "config.json"); });
  const bool resnet = read_family<ResNetConfig>(*input);
  const bool segformer = read_family<SegformerConfig>(*input);
  const bool detr = read_family<DetrConfig>(*input);
  // A family accepts a config only of its own model_type (or none given), so the dispatch never sends a config to a
  // family that would refuse it for its type alone.
  if (algo) {
    EM_FUZZ_CHECK(!resnet || *algo == Algo::classification);
    EM_FUZZ_CHECK(!segformer || *algo == Algo::segmentation);
    EM_FUZZ_CHECK(!detr || *algo == Algo::detection);
  }
  return 0;
}
