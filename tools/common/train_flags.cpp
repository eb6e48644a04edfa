#include "common/train_flags.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/models/model_folder.hpp"
#include "em/tensor/threads.hpp"
#include "em/train/checkpoint.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <tuple>
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

// em-train's options that are not hyperparameters may be given in a --hyperparameters file too (SPEC lists threads,
// init and resume_from_checkpoint among the hyperparameters, and a run's hyperparameters.json holds threads): each
// applies where the command line does not give its flag, and is taken out of the document before the
// hyperparameters are read from it.
class FileOptions {
 public:
  FileOptions(const CLI::App& app, io::Json doc, std::string path)
      : app_(app), doc_(std::move(doc)), path_(std::move(path)) {}

  void take_string(const std::string& key, std::string& target) {
    const auto it = doc_.find(key);
    if (it == doc_.end()) return;
    if (!it->is_string()) bad(key, *it, "a string");
    if (!given(key)) target = it->get<std::string>();
    doc_.erase(it);
  }
  void take_bool(const std::string& key, bool& target) {
    const auto it = doc_.find(key);
    if (it == doc_.end()) return;
    if (!given(key)) target = as_bool(key, *it);
    doc_.erase(it);
  }
  // resume_from_checkpoint: a checkpoint folder, or true (the latest in output_dir) / false (no resume).
  void take_resume(std::optional<std::string>& target) {
    const auto it = doc_.find("resume_from_checkpoint");
    if (it == doc_.end()) return;
    std::optional<std::string> value;
    if (it->is_string() && it->get<std::string>() != "true" && it->get<std::string>() != "false")
      value = it->get<std::string>();
    else if (as_bool("resume_from_checkpoint", *it))
      value = "";
    if (!given("resume_from_checkpoint")) target = value;
    doc_.erase(it);
  }
  // threads: an integer >= 0 (0 = every usable CPU); -1 when the file has none.
  int take_threads() {
    const auto it = doc_.find("threads");
    if (it == doc_.end()) return -1;
    int64_t n = -1;
    if (it->is_number_integer()) n = it->get<int64_t>();
    else if (it->is_string()) n = parse_int(it->get<std::string>());
    if (n < 0 || n > 4096) bad("threads", *it, "an integer in [0, 4096]");
    doc_.erase(it);
    return given("threads") ? -1 : static_cast<int>(n);
  }
  const io::Json& rest() const { return doc_; }

 private:
  bool given(const std::string& key) const { return app_.get_option("--" + key)->count() > 0; }
  [[noreturn]] void bad(const std::string& key, const io::Json& v, const char* expected) const {
    usage_fail("{}: \"{}\": expected {}, got {}", path_, key, expected, io::dump_json(v));
  }
  bool as_bool(const std::string& key, const io::Json& v) const {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_string() && (v == "true" || v == "True" || v == "1")) return true;
    if (v.is_string() && (v == "false" || v == "False" || v == "0")) return false;
    bad(key, v, "true or false");
  }
  static int64_t parse_int(const std::string& s) {
    size_t used = 0;
    try {
      const long long n = std::stoll(s, &used);
      return used == s.size() ? n : -1;
    } catch (const std::exception&) {
      return -1;
    }
  }

  const CLI::App& app_;
  io::Json doc_;
  std::string path_;
};

// A resumed run computes as the checkpoint's run did only with its number of compute threads (LibTorch's reductions
// split by thread): without --threads (flag or file) the checkpoint's threads apply. Errors about the checkpoint
// (none, unreadable) are the trainer's to report.
void adopt_checkpoint_threads(const train::TrainOptions& opts) {
  namespace fs = std::filesystem;
  try {
    const fs::path dir = opts.resume_from_checkpoint->empty() ? train::latest_checkpoint(opts.output_dir)
                                                              : fs::path(*opts.resume_from_checkpoint);
    const io::Json hp = io::read_json_file((dir / "hyperparameters.json").string());
    if (const auto it = hp.find("threads"); it != hp.end() && it->is_number_integer() && it->get<int64_t>() > 0 &&
                                            it->get<int64_t>() <= 4096) {
      tensor::set_compute_threads(it->get<int>());
      log::info("--threads {}: the checkpoint's (a resumed run is bit-identical with the same threads; give --threads "
                "to choose another)",
                it->get<int>());
    }
  } catch (const Error&) {
  }
}

}  // namespace

void bind_train_flags(CLI::App& app, TrainFlags& flags) {
  // Required, on the command line or in the --hyperparameters file (resolve_train_options checks).
  app.add_option("--algo", flags.algo, algo_names(" | ", " | ") + " (required)");
  app.add_option("--data", flags.options.data_dir,
                 "Dataset folder in the algorithm's layout (docs/datasets.md) (required)");
  app.add_option("--output_dir", flags.options.output_dir, "Run directory to write (docs/run-directory.md) (required)");
  app.add_option("--hyperparameters", flags.hyperparameters_file,
                 "JSON object of hyperparameters and of any other option here (algo, data, output_dir, "
                 "model_config, init, init_partial, overwrite_output_dir, resume_from_checkpoint, threads); values "
                 "may be strings; flags win over it (a run's hyperparameters.json is such a file)");
  app.add_option("--model_config", flags.options.model_config, model_config_help());
  app.add_option("--init", flags.options.init,
                 "Start from these weights: an HF model folder (its config.json gives the architecture unless "
                 "--model_config is given), a .safetensors file or a PyTorch .pth/.bin (default: random init)");
  app.add_flag("--init_partial", flags.options.init_partial,
               "Let --init leave tensors beyond the task head freshly initialised (otherwise an error)");
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
  const std::string& path = flags.hyperparameters_file;
  FileOptions file(app, path.empty() ? io::Json::object() : train::read_hyperparameters_file(path), path);
  train::TrainOptions& o = flags.options;
  if (app.get_option("--resume_from_checkpoint")->count() > 0) o.resume_from_checkpoint = flags.resume;
  file.take_string("algo", flags.algo);
  file.take_string("data", o.data_dir);
  file.take_string("output_dir", o.output_dir);
  file.take_string("model_config", o.model_config);
  file.take_string("init", o.init);
  file.take_bool("init_partial", o.init_partial);
  file.take_bool("overwrite_output_dir", o.overwrite_output_dir);
  file.take_resume(o.resume_from_checkpoint);
  const int file_threads = file.take_threads();
  for (const auto& [flag, value, key] : {std::tuple{"--algo", &flags.algo, "algo"},
                                         std::tuple{"--data", &o.data_dir, "data"},
                                         std::tuple{"--output_dir", &o.output_dir, "output_dir"}})
    if (value->empty()) usage_fail("{} is required (on the command line, or \"{}\" in a --hyperparameters file)", flag, key);
  if (file_threads >= 0) tensor::set_compute_threads(file_threads);
  else if (o.resume_from_checkpoint && app.get_option("--threads")->count() == 0) adopt_checkpoint_threads(o);

  train::TrainOptions opts = o;
  opts.hp = train::Hyperparameters::defaults(parse_algo(flags.algo));
  for (const auto& [name, value] : file.rest().items()) opts.hp.set_json(name, value, path);
  for (const auto& [name, value] : flags.values) {
    try {
      opts.hp.set(name, value);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--") + name + ": " + e.what());
    }
  }
  opts.hp.validate();
  return opts;
}

}  // namespace em::cli
