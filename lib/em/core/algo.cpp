#include "em/core/algo.hpp"

#include "em/core/error.hpp"

#include <iterator>

namespace em {
namespace {

// One row per algorithm, in enum order. Hyperparameter defaults not given here are the Hyperparameters struct's
// (train/hyperparameters.hpp); docs/training.md has the table per algorithm.
constexpr AlgoInfo kAlgorithms[] = {
    {Algo::classification, "classification", "resnet", "resnet-50", "DIR/train/{label}/IMAGE", "accuracy",
     R"({})"},
    {Algo::segmentation, "segmentation", "segformer", "mit-b3", "DIR/train/train.json, DIR/resources/id2label.json",
     "mean_iou",
     R"({"learning_rate": 2e-4, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4,
         "image_size": 512})"},
    {Algo::detection, "detection", "detr", "detr-resnet-50",
     "DIR/train/_annotations.coco.json with the images beside it", "AP",
     R"({"learning_rate": 2e-4, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4,
         "weight_decay": 1e-4, "max_grad_norm": 0.1, "image_size": 800})"},
};
static_assert(one_row_per_algo(kAlgorithms), "kAlgorithms: one row per Algo value, in enum order");

template <typename Field>
std::string join_rows(Field field, const char* separator, const char* last) {
  std::string out;
  for (std::size_t i = 0; i < kAlgoCount; ++i) {
    if (i > 0) out += (i + 1 == kAlgoCount) ? last : separator;
    out += field(kAlgorithms[i]);
  }
  return out;
}

}  // namespace

const AlgoInfo& algo_info(Algo algo) { return kAlgorithms[index_of(algo)]; }
const AlgoInfo* algorithms_begin() { return std::begin(kAlgorithms); }
const AlgoInfo* algorithms_end() { return std::end(kAlgorithms); }

Algo parse_algo(const std::string& name) {
  for (const auto& row : kAlgorithms)
    if (name == row.name) return row.algo;
  usage_fail("--algo: unknown algorithm '{}' (expected {})", name, algo_names());
}

std::string algo_name(Algo algo) { return algo_info(algo).name; }

std::optional<Algo> algo_of_model_type(const std::string& model_type) {
  for (const auto& row : kAlgorithms)
    if (model_type == row.model_type) return row.algo;
  return std::nullopt;
}

std::string algo_names(const char* separator, const char* last) {
  return join_rows([](const AlgoInfo& r) { return r.name; }, separator, last);
}

std::string model_type_names() {
  return join_rows([](const AlgoInfo& r) { return r.model_type; }, ", ", " or ");
}

std::string AlgoSet::to_string() const {
  if (*this == all()) return "every algorithm";
  std::string out;
  for (const auto& row : kAlgorithms)
    if (contains(row.algo)) out += (out.empty() ? "" : ", ") + std::string(row.name);
  return out;
}

}  // namespace em
