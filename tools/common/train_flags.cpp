#include "common/train_flags.hpp"

#include "em/core/error.hpp"
#include "em/models/model_folder.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace em::cli {
namespace {

// "Built-in model name or an HF config.json. classification: resnet-18, ... (default resnet-50); ..."
std::string model_config_help() {
  std::string help = "Built-in model name or an HF config.json (its architecture; labels come from the dataset).";
  for (const AlgoInfo* row = algorithms_begin(); row != algorithms_end(); ++row)
    help += fmt::format(" {}: {} (default {});", row->name, fmt::join(models::builtin_model_names(row->algo), ", "),
                        row->default_model);
  help.pop_back();
  return help;
}

// "default 500", or per algorithm where they differ: "default 0.1 (classification), 0.0002 (segmentation,
// detection)" — from each algorithm's Hyperparameters::defaults, so --help shows what a run would use.
std::string defaults_help(const train::ParamSpec& spec) {
  static const std::vector<io::Json> defaults = [] {  // hyperparameters.json of each algorithm's defaults
    std::vector<io::Json> d;
    for (const AlgoInfo* row = algorithms_begin(); row != algorithms_end(); ++row)
      d.push_back(train::Hyperparameters::defaults(row->algo).to_json());
    return d;
  }();
  std::vector<std::pair<std::string, std::string>> groups;  // (value, algorithms)
  for (const AlgoInfo* row = algorithms_begin(); row != algorithms_end(); ++row) {
    if (!spec.algos.contains(row->algo)) continue;
    const io::Json& value = defaults[index_of(row->algo)].at(spec.name);
    const std::string text = value.is_string() ? value.get<std::string>() : io::dump_json(value);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == text; });
    if (it == groups.end())
      groups.emplace_back(text, row->name);
    else
      it->second += std::string(", ") + row->name;
  }
  if (groups.size() == 1) return "default " + groups[0].first;
  std::string out = "default";
  for (size_t i = 0; i < groups.size(); ++i)
    out += fmt::format("{} {} ({})", i ? "," : "", groups[i].first, groups[i].second);
  return out;
}

}  // namespace

void bind_train_flags(CLI::App& app, TrainFlags& flags) {
  app.add_option("--algo", flags.algo, algo_names(" | ", " | "))->required();
  app.add_option("--data", flags.options.data_dir, "Dataset folder in the algorithm's layout (docs/datasets.md)")
      ->required();
  app.add_option("--output_dir", flags.options.output_dir, "Run directory to write (docs/run-directory.md)")
      ->required();
  app.add_option("--hyperparameters", flags.hyperparameters_file,
                 "JSON object of hyperparameters (values may be strings); flags win over it");
  app.add_option("--model_config", flags.options.model_config, model_config_help());
  app.add_option("--init", flags.options.init,
                 "Start from these weights: an HF model folder or a .safetensors file (default: random init)");
  app.add_flag("--overwrite_output_dir", flags.options.overwrite_output_dir,
               "Replace the run in --output_dir (only files emkit wrote are removed)");
  app.add_option("--resume_from_checkpoint", flags.resume,
                 "Continue from a checkpoint folder; without DIR, the latest in --output_dir")
      ->expected(0, 1);
  for (const auto& spec : train::param_specs()) {
    const std::string where = spec.algos.to_string();
    const bool is_bool = spec.type == "bool";
    // A boolean is a flag: "--bf16" alone is true; "--bf16 false" and "--bf16=false" (platforms pass strings) too.
    auto* opt = app.add_option_function<std::string>(
        "--" + spec.name,
        [&flags, name = spec.name, is_bool](const std::string& v) {
          flags.values[name] = is_bool && v.empty() ? "true" : v;
        },
        spec.help + " [" + spec.type + " " + spec.range + "; " + where + "; " + defaults_help(spec) + "]");
    if (is_bool) opt->expected(0, 1);
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a Makefile may append an override
    opt->type_name(spec.type == "bool" ? "BOOL" : spec.type == "string" ? "NAME" : spec.type == "int" ? "INT" : "FLOAT");
  }
}

train::TrainOptions resolve_train_options(const CLI::App& app, TrainFlags& flags) {
  train::TrainOptions opts = flags.options;
  opts.hp = train::Hyperparameters::defaults(parse_algo(flags.algo));
  if (!flags.hyperparameters_file.empty()) opts.hp.apply_file(flags.hyperparameters_file);
  for (const auto& [name, value] : flags.values) {
    try {
      opts.hp.set(name, value);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--") + name + ": " + e.what());
    }
  }
  opts.hp.validate();
  if (app.get_option("--resume_from_checkpoint")->count() > 0) opts.resume_from_checkpoint = flags.resume;
  return opts;
}

}  // namespace em::cli
