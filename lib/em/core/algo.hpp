// The algorithms emkit trains and serves, as one table: an algorithm is one row of kAlgorithms (algo.cpp) — its
// name (--algo), the model_type of its model folders, its default model, its dataset layout, the metric that
// decides "best" and its hyperparameter defaults. Each layer finds its own pieces for an algorithm through the same
// enum, in a table of its own indexed by it (data: validators; metrics: prediction-file scorers; train: tasks;
// infer: predictors), each checked at compile time to have one entry per algorithm. docs/architecture.md, "Adding a
// fourth algorithm", walks through every place.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace em {

enum class Algo : unsigned { classification, segmentation, detection };
inline constexpr std::size_t kAlgoCount = 3;

constexpr std::size_t index_of(Algo algo) { return static_cast<std::size_t>(algo); }

struct AlgoInfo {
  Algo algo;
  const char* name;            // --algo value, "algo" in reports and hyperparameters.json
  const char* model_type;      // config.json "model_type" of its model folders (HF's)
  const char* default_model;   // built-in model em-train builds without --model_config
  const char* dataset_layout;  // one line for "expected ..." messages; docs/datasets.md has the whole layout
  const char* main_metric;     // the evaluation metric that decides "best" (greater is better)
  // Hyperparameters whose defaults differ from the Hyperparameters struct's, as a JSON object of name -> value
  // (only parameters that apply to the algorithm).
  const char* hyperparameter_defaults;
};

// The row of `algo`.
const AlgoInfo& algo_info(Algo algo);
// Every row, in enum order (for help texts and docs: "classification, segmentation or detection").
const AlgoInfo* algorithms_begin();
const AlgoInfo* algorithms_end();

// --algo NAME -> Algo; throws em::UsageError naming the valid values.
Algo parse_algo(const std::string& name);
std::string algo_name(Algo algo);
// The algorithm whose models have this config.json model_type, if any.
std::optional<Algo> algo_of_model_type(const std::string& model_type);
// "classification, segmentation or detection" (with `last` = "or"), or with another separator: "a | b | c".
std::string algo_names(const char* separator = ", ", const char* last = " or ");
// "resnet, segformer or detr".
std::string model_type_names();

// For each layer's table of pieces (one row per algorithm, each row with an `algo` member):
// static_assert(one_row_per_algo(kRows), "...") fails to compile when a row is missing or out of enum order.
template <typename Row, std::size_t N>
constexpr bool one_row_per_algo(const Row (&rows)[N]) {
  if (N != kAlgoCount) return false;
  for (std::size_t i = 0; i < N; ++i)
    if (index_of(rows[i].algo) != i) return false;
  return true;
}

// A set of algorithms (where a hyperparameter applies).
class AlgoSet {
 public:
  constexpr AlgoSet() = default;
  constexpr AlgoSet(std::initializer_list<Algo> algos) {
    for (Algo a : algos) bits_ |= bit(a);
  }
  static constexpr AlgoSet all() {
    AlgoSet s;
    s.bits_ = (1u << kAlgoCount) - 1;
    return s;
  }
  constexpr bool contains(Algo algo) const { return (bits_ & bit(algo)) != 0; }
  constexpr bool operator==(const AlgoSet& other) const { return bits_ == other.bits_; }
  // "every algorithm", or the names: "segmentation, detection".
  std::string to_string() const;

 private:
  static constexpr unsigned bit(Algo a) { return 1u << static_cast<unsigned>(a); }
  unsigned bits_ = 0;
};

}  // namespace em
