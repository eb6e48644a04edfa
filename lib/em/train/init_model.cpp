#include "em/train/init_model.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/models/config_fields.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/ranges.h>

namespace em::train {
namespace fs = std::filesystem;
namespace {

bool starts_with_any(const std::string& name, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return name.rfind(p, 0) == 0; });
}

// The first few names and a count: a message stays one line for a 300-tensor mismatch.
std::string listed(const std::vector<std::string>& names, size_t limit = 6) {
  const auto end = names.begin() + static_cast<std::ptrdiff_t>(std::min(limit, names.size()));
  const std::vector<std::string> head(names.begin(), end);
  std::string out = fmt::format("{}", fmt::join(head, ", "));
  if (names.size() > limit) out += fmt::format(", ... ({} more)", names.size() - limit);
  return out;
}

enum class LabelMatch { same, reordered, different, unknown };

}  // namespace

std::string training_model_config(const std::string& model_config, const std::string& init, Algo algo) {
  if (!model_config.empty() || init.empty()) return model_config;
  std::error_code ec;
  const fs::path config = fs::path(init) / "config.json";
  if (!fs::is_directory(init, ec) || !fs::exists(config, ec)) return "";
  const io::Json j = io::read_json_file(config.string());
  const std::string type = models::config::model_type_of(j, "", config.string());
  const std::string expected = algo_info(algo).model_type;
  if (type != expected)
    usage_fail("--init {}: its config.json describes a \"{}\" model; --algo {} trains \"{}\" models (give a folder of "
               "one, or --model_config with a bare weights file)",
               init, type.empty() ? "(no model_type)" : type, algo_info(algo).name, expected);
  log::info("architecture from --init's {} (give --model_config to choose another)", config.string());
  return config.string();
}

models::InitReport init_model(torch::nn::Module& module, const std::string& init,
                              const std::vector<std::string>& labels, const models::InitOptions& options,
                              const InitHead& head, bool partial) {
  // The label rows as built (fresh), to put back when the checkpoint's head is for other labels.
  std::map<std::string, torch::Tensor> fresh;
  {
    const auto tensors = models::state_of(module);
    for (const auto& name : head.label_rows)
      if (auto it = tensors.find(name); it != tensors.end()) fresh.emplace(name, it->second.detach().clone());
  }
  models::InitReport report = models::load_init_weights(module, init, options);

  // The checkpoint's labels, as its config.json names them (HF resolves id2label, else num_labels LABEL_i).
  std::vector<std::string> theirs;
  if (report.config)
    theirs = models::config::read_labels(*report.config, {}, 0, (fs::path(init) / "config.json").string());
  LabelMatch match = LabelMatch::unknown;
  std::vector<int64_t> order;  // order[i]: the checkpoint's row for the dataset's label i
  if (!theirs.empty()) {
    if (theirs == labels) {
      match = LabelMatch::same;
    } else {
      std::map<std::string, int64_t> row_of;
      for (size_t i = 0; i < theirs.size(); ++i) row_of.emplace(theirs[i], static_cast<int64_t>(i));
      const bool unique = row_of.size() == theirs.size();
      match = unique && theirs.size() == labels.size() ? LabelMatch::reordered : LabelMatch::different;
      for (size_t i = 0; i < labels.size() && match == LabelMatch::reordered; ++i) {
        auto it = row_of.find(labels[i]);
        if (it == row_of.end()) match = LabelMatch::different;
        else order.push_back(it->second);
      }
    }
  }

  const std::set<std::string> loaded(report.loaded.begin(), report.loaded.end());
  const bool head_loaded = std::any_of(head.label_rows.begin(), head.label_rows.end(),
                                       [&](const std::string& n) { return loaded.count(n) > 0; });
  if (head_loaded && (match == LabelMatch::reordered || match == LabelMatch::different)) {
    torch::NoGradGuard no_grad;
    const auto tensors = models::state_of(module);
    if (match == LabelMatch::reordered) {
      const torch::Tensor index = torch::tensor(order, torch::kInt64);
      for (const auto& name : head.label_rows) {
        if (!loaded.count(name)) continue;
        torch::Tensor t = tensors.at(name);
        const int64_t n = static_cast<int64_t>(order.size());
        torch::Tensor rows = t.narrow(0, 0, n).index_select(0, index.to(t.device()));
        t.narrow(0, 0, n).copy_(rows);
      }
      log::info("--init {}: the checkpoint has the dataset's {} labels in another order; its head's rows were "
                "reordered to the dataset's ids",
                init, labels.size());
    } else {
      for (const auto& name : head.label_rows)
        if (loaded.count(name)) tensors.at(name).copy_(fresh.at(name));
      log::warn("--init {}: the checkpoint's labels ({}) are not the dataset's ({}): the head ({}) keeps its fresh "
                "initialisation",
                init, listed(theirs), listed(labels), fmt::join(head.label_rows, ", "));
    }
    for (const auto& name : head.label_rows)
      if (loaded.count(name)) {
        report.loaded.erase(std::find(report.loaded.begin(), report.loaded.end(), name));
        if (match == LabelMatch::different) report.reinitialised.push_back(name);
        else report.loaded.push_back(name);
      }
  }

  // Partial: model tensors left fresh beyond the head.
  std::vector<std::string> beyond;
  for (const auto* names : {&report.missing, &report.reinitialised})
    for (const auto& name : *names)
      if (!starts_with_any(name, head.prefixes)) beyond.push_back(name);
  if (!beyond.empty()) {
    if (!partial)
      usage_fail("--init {}: {} model tensors outside the task head ({}) are not in the checkpoint or have another "
                 "shape there: {}. It is a checkpoint of another architecture: give the --model_config it was "
                 "trained with, or --init_partial to train with those tensors freshly initialised",
                 init, beyond.size(), fmt::join(head.prefixes, ", "), listed(beyond));
    log::warn("--init {} with --init_partial: {} model tensors outside the task head start from a fresh "
              "initialisation: {}",
              init, beyond.size(), listed(beyond));
  } else if (report.missing.size() + report.reinitialised.size() > 0 && match != LabelMatch::different) {
    log::info("--init {}: the task head ({}) starts from a fresh initialisation; every other tensor was loaded", init,
              fmt::join(head.prefixes, ", "));
  }
  return report;
}

}  // namespace em::train
