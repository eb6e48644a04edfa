// Helpers shared by the model tests: numeric distance between tensors, HF parameter-name lists, tiny configs.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/json.hpp"
#include "em/models/segformer.hpp"

namespace em::test {

using NamesAndShapes = std::vector<std::pair<std::string, std::string>>;  // ("a.b.weight", "64,3,7,7"), sorted

// max |a - b| in float64; 0 for two empty tensors.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// tests/golden/FILE: one "name<TAB>shape" line per HF state_dict entry, sorted (scripts/golden/*_hf_names.py).
inline NamesAndShapes golden_names(const std::string& file) {
  std::ifstream in(std::string(EM_SOURCE_DIR) + "/tests/golden/" + file);
  REQUIRE(in.good());
  NamesAndShapes out;
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    out.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return out;
}

// Every parameter and buffer of MODULE with its shape, sorted: what PyTorch's state_dict() holds.
inline NamesAndShapes names_and_shapes(const torch::nn::Module& module) {
  NamesAndShapes out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    std::string shape;
    for (auto d : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    out.emplace_back(name, shape);
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  std::sort(out.begin(), out.end());
  return out;
}

// "class_0", "class_1", ... (PREFIX + index): labels for a model of N classes.
inline std::vector<std::string> numbered_labels(int64_t n, const std::string& prefix = "class_") {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

// Two stages (sequence reduction 2 and 1), widths 8 and 16: a SegFormer that trains in milliseconds. No labels set.
inline models::SegformerConfig tiny_segformer_config(std::vector<int64_t> depths = {1, 1}) {
  models::SegformerConfig c;
  c.num_encoder_blocks = 2;
  c.depths = std::move(depths);
  c.sr_ratios = {2, 1};
  c.hidden_sizes = {8, 16};
  c.patch_sizes = {7, 3};
  c.strides = {4, 2};
  c.num_attention_heads = {1, 2};
  c.mlp_ratios = {2, 2};
  c.decoder_hidden_size = 8;
  return c;
}

// The message Config::from_json(BASE with KEY set to VALUE, "cfg.json") fails with, or "(no error)".
template <class Config>
std::string config_error_with(const io::Json& base, const std::string& key, const io::Json& value) {
  io::Json j = base;
  j[key] = value;
  try {
    Config::from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace em::test
