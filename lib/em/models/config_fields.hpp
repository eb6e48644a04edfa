// What the three model configs (ResNet, SegFormer, DETR) share: typed fields of an HF config.json read with errors
// that name the file, the field and the value; HF's model_type/architectures and label fields; the activations of
// HF's ACT2FN by name. No LibTorch here (the fuzz build compiles it beside em_base); layers.hpp applies activations.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"

namespace em::models {

// The activations HF's ACT2FN offers that make sense here ("relu", "gelu", "gelu_new", "silu"/"swish", "tanh").
enum class Activation { none, relu, gelu, gelu_tanh, silu, tanh };
// `field` names the config field in the error ("hidden_act" for ResNet/SegFormer, "activation_function" for DETR).
Activation parse_activation(const std::string& name, const std::string& what, const char* field = "hidden_act");

namespace config {

std::string json_text(const io::Json& v);

// Each reader returns `fallback` when `key` is absent and fails ("WHAT: field "KEY": expected ..., got VALUE") when
// it is present with the wrong type or out of range.
int64_t int_field(const io::Json& obj, const char* key, int64_t fallback, int64_t min, const std::string& what);
int64_t any_int_field(const io::Json& obj, const char* key, int64_t fallback, const std::string& what);
std::vector<int64_t> positive_ints_field(const io::Json& obj, const char* key, std::vector<int64_t> fallback,
                                         const std::string& what);
double number_field(const io::Json& obj, const char* key, double fallback, const std::string& what);
bool bool_field(const io::Json& obj, const char* key, bool fallback, const std::string& what);
std::string string_field(const io::Json& obj, const char* key, std::string fallback, const std::string& what);

// Bounds checked before a model is built (config.json comes from anywhere: hidden_sizes 1e9 must be an error, not
// an allocation). Labels: ImageNet-21k has 21,841. Parameters: the largest checkpoints of these families (DETR-R101,
// SegFormer-B5, ResNet-152) have under 0.1e9.
constexpr int64_t kMaxLabels = 1 << 20;
constexpr double kMaxParameters = 2e9;
// Fails ("WHAT: the sizes in this config make a model of about N parameters ...") above kMaxParameters. Each config's
// validate() passes its own estimate (an upper bound from the sizes, in double: no overflow).
void check_parameter_budget(double parameters, const std::string& what);

// HF keeps id2label as {"0": "cat", ...}; the ids must be exactly 0..n-1, each once. Labels in id order.
std::vector<std::string> parse_id2label(const io::Json& j, const std::string& what);

// The model_type of a config.json (`fallback` when absent): the field every loader dispatches on. Fails ("WHAT:
// ...") when `json` is not an object or its model_type is not a string: the file comes from anywhere.
std::string model_type_of(const io::Json& json, const std::string& fallback, const std::string& what);
// The algorithm whose models a config.json describes (core/algo's table, by model_type). Fails naming `what` when
// model_type_of fails or model_type is none of the table's.
Algo algo_of_config(const io::Json& json, const std::string& what);

// Fails unless `json` is an object whose "model_type" (absent: model_type) is model_type and whose "architectures",
// where given, are all among `architectures` (the first is the one the error names). `family` names the model in
// errors ("ResNet").
void check_model_type(const io::Json& json, const std::string& model_type, const std::string& family,
                      const std::vector<std::string>& architectures, const std::string& what);

// The labels as HF's PretrainedConfig resolves them: id2label wins, else num_labels (>= min_labels) LABEL_i names,
// else `fallback`. A num_labels beside id2label must agree with it, and a label2id must be its inverse (where a name
// repeats, as HF builds label2id as a dict, it maps to one of that name's ids).
std::vector<std::string> read_labels(const io::Json& json, std::vector<std::string> fallback, int64_t min_labels,
                                     const std::string& what);
// id2label ({"0": name, ...}) and label2id ({name: id}; a repeated name keeps its last id, as HF's dict does).
io::Json id2label_json(const std::vector<std::string>& labels);
io::Json label2id_json(const std::vector<std::string>& labels);

}  // namespace config
}  // namespace em::models
