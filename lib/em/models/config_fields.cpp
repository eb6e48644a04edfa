#include "em/models/config_fields.hpp"

#include "em/core/error.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace em::models {

Activation parse_activation(const std::string& name, const std::string& what, const char* field) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu") return Activation::gelu;  // exact erf GELU
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  if (name == "silu" || name == "swish") return Activation::silu;
  if (name == "tanh") return Activation::tanh;
  fail("{}: field \"{}\": unsupported activation \"{}\" (expected relu, gelu, gelu_new, silu, swish or tanh)", what,
       field, name);
}

namespace config {

std::string json_text(const io::Json& v) { return io::dump_json(v); }

int64_t int_field(const io::Json& obj, const char* key, int64_t fallback, int64_t min, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < min)
    fail("{}: field \"{}\": expected an integer >= {}, got {}", what, key, min, json_text(*it));
  return it->get<int64_t>();
}

int64_t any_int_field(const io::Json& obj, const char* key, int64_t fallback, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  // An integer past int64 (nlohmann keeps it unsigned) would wrap: 18446744073709551615 is not -1.
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX}))
    fail("{}: field \"{}\": expected a 64-bit integer, got {}", what, key, json_text(*it));
  return it->get<int64_t>();
}

std::vector<int64_t> positive_ints_field(const io::Json& obj, const char* key, std::vector<int64_t> fallback,
                                         const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  bool ok = it->is_array() && !it->empty();
  if (ok)
    for (const auto& v : *it) ok = ok && v.is_number_integer() && v.get<int64_t>() >= 1;
  if (!ok) fail("{}: field \"{}\": expected a non-empty array of positive integers, got {}", what, key, json_text(*it));
  return it->get<std::vector<int64_t>>();
}

double number_field(const io::Json& obj, const char* key, double fallback, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_number()) fail("{}: field \"{}\": expected a number, got {}", what, key, json_text(*it));
  return it->get<double>();
}

bool bool_field(const io::Json& obj, const char* key, bool fallback, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_boolean()) fail("{}: field \"{}\": expected true or false, got {}", what, key, json_text(*it));
  return it->get<bool>();
}

std::string string_field(const io::Json& obj, const char* key, std::string fallback, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (!it->is_string()) fail("{}: field \"{}\": expected a string, got {}", what, key, json_text(*it));
  return it->get<std::string>();
}

std::vector<std::string> parse_id2label(const io::Json& j, const std::string& what) {
  if (!j.is_object())
    fail("{}: field \"id2label\": expected an object {{\"0\": \"label\", ...}}, got {}", what, json_text(j));
  std::vector<std::string> labels(j.size());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    size_t id = 0;
    size_t used = 0;
    try {
      id = std::stoul(it.key(), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != it.key().size() || id >= labels.size() || seen[id])
      fail("{}: field \"id2label\": key \"{}\" is not one of the ids 0..{} (each once)", what, it.key(),
           labels.empty() ? 0 : labels.size() - 1);
    if (!it.value().is_string())
      fail("{}: field \"id2label\".\"{}\": expected a label string, got {}", what, it.key(), json_text(it.value()));
    labels[id] = it.value().get<std::string>();
    seen[id] = true;
  }
  return labels;
}

std::string model_type_of(const io::Json& json, const std::string& fallback, const std::string& what) {
  if (!json.is_object()) fail("{}: expected a JSON object (an HF config.json), got {}", what, json.type_name());
  return string_field(json, "model_type", fallback, what);
}

Algo algo_of_config(const io::Json& json, const std::string& what) {
  const std::string type = model_type_of(json, "", what);
  if (auto algo = algo_of_model_type(type)) return *algo;
  fail("{}: model_type '{}' is not one emkit serves (expected {})", what, type, model_type_names());
}

void check_model_type(const io::Json& json, const std::string& model_type, const std::string& family,
                      const std::vector<std::string>& architectures, const std::string& what) {
  if (!json.is_object()) fail("{}: expected a JSON object (an HF {} config.json)", what, family);
  std::string type = string_field(json, "model_type", model_type, what);
  if (type != model_type)
    fail("{}: field \"model_type\": expected \"{}\", got \"{}\" (not a {} config)", what, model_type, type, family);
  auto it = json.find("architectures");
  if (it == json.end() || it->is_null()) return;
  if (!it->is_array()) fail("{}: field \"architectures\": expected an array of names, got {}", what, json_text(*it));
  for (const auto& a : *it) {
    bool known = a.is_string() &&
                 std::find(architectures.begin(), architectures.end(), a.get<std::string>()) != architectures.end();
    if (!known) fail("{}: field \"architectures\": expected \"{}\", got {}", what, architectures.front(), json_text(a));
  }
}

void check_parameter_budget(double parameters, const std::string& what) {
  if (!(parameters <= kMaxParameters))
    fail("{}: the sizes in this config make a model of about {:.3g} parameters ({:.0f} GB in fp32); emkit builds "
         "models of at most {:.0e} (the largest HF checkpoint of these families has ~0.1e9): check hidden_sizes, "
         "depths, d_model, *_ffn_dim, *_layers, num_queries and num_labels",
         what, parameters, parameters * 4 / 1e9, kMaxParameters);
}

std::vector<std::string> read_labels(const io::Json& json, std::vector<std::string> fallback, int64_t min_labels,
                                     const std::string& what) {
  std::vector<std::string> labels = std::move(fallback);
  if (auto it = json.find("id2label"); it != json.end() && !it->is_null()) {
    labels = parse_id2label(*it, what);
    auto n = json.find("num_labels");
    if (n != json.end() && (!n->is_number_integer() || *n != static_cast<int64_t>(labels.size())))
      fail("{}: field \"num_labels\" is {} but \"id2label\" names {} labels", what, json_text(*n), labels.size());
  } else if (auto n = json.find("num_labels"); n != json.end()) {
    if (!n->is_number_integer() || n->get<int64_t>() < min_labels || n->get<int64_t>() > kMaxLabels)
      fail("{}: field \"num_labels\": expected an integer from {} to {}, got {}", what, min_labels, kMaxLabels,
           json_text(*n));
    labels.clear();
    for (int64_t i = 0; i < n->get<int64_t>(); ++i) labels.push_back(fmt::format("LABEL_{}", i));
  }
  if (auto it = json.find("label2id"); it != json.end() && !it->is_null()) {
    if (!it->is_object())
      fail("{}: field \"label2id\": expected an object {{\"label\": id}}, got {}", what, json_text(*it));
    const std::set<std::string> names(labels.begin(), labels.end());
    const auto count = static_cast<int64_t>(labels.size());
    bool ok = it->size() == names.size();
    for (auto entry = it->begin(); ok && entry != it->end(); ++entry) {
      const io::Json& id = entry.value();
      ok = names.count(entry.key()) && id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < count &&
           labels[static_cast<size_t>(id.get<int64_t>())] == entry.key();
    }
    if (!ok)
      fail("{}: field \"label2id\" {} disagrees with \"id2label\" (it must be its inverse)", what, json_text(*it));
  }
  return labels;
}

io::Json id2label_json(const std::vector<std::string>& labels) {
  io::Json j = io::Json::object();
  for (size_t i = 0; i < labels.size(); ++i) io::append_new_member(j, std::to_string(i), labels[i]);
  return j;
}

io::Json label2id_json(const std::vector<std::string>& labels) {
  // As j[name] = id in id order (a name given twice keeps its first place and its last id), in linear time.
  io::Json j = io::Json::object();
  std::set<std::string> names;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (names.insert(labels[i]).second) io::append_new_member(j, labels[i], i);
    else j[labels[i]] = i;
  }
  return j;
}

}  // namespace config
}  // namespace em::models
