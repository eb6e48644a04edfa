#include "common/train_flags.hpp"

#include "em/core/error.hpp"

namespace em::cli {

void bind_train_flags(CLI::App& app, TrainFlags& flags) {
  app.add_option("--algo", flags.algo, "classification | segmentation | detection")->required();
  app.add_option("--data", flags.options.data_dir, "Dataset folder in the algorithm's layout (docs/datasets.md)")
      ->required();
  app.add_option("--output_dir", flags.options.output_dir, "Run directory to write (docs/run-directory.md)")
      ->required();
  app.add_option("--hyperparameters", flags.hyperparameters_file,
                 "JSON object of hyperparameters (values may be strings); flags win over it");
  app.add_option("--model_config", flags.options.model_config,
                 "Built-in model name (classification: resnet-18/34/50/101/152; segmentation: mit-b0..mit-b5; "
                 "detection: detr-resnet-50/101, detr-resnet-50-dc5, detr-resnet-18/34, detr-resnet-18-tiny) or an "
                 "HF config.json; default: the seed's model (resnet-50, mit-b3, detr-resnet-50)");
  app.add_option("--init", flags.options.init,
                 "Start from these weights: an HF model folder or a .safetensors file (default: random init)");
  app.add_flag("--overwrite_output_dir", flags.options.overwrite_output_dir,
               "Replace the run in --output_dir (only files emkit wrote are removed)");
  app.add_option("--resume_from_checkpoint", flags.resume,
                 "Continue from a checkpoint folder; without DIR, the latest in --output_dir")
      ->expected(0, 1);
  for (const auto& spec : train::param_specs()) {
    std::string where = std::string(spec.classification ? "cls " : "") + (spec.segmentation ? "seg " : "") +
                        (spec.detection ? "det" : "");
    auto* opt = app.add_option_function<std::string>(
        "--" + spec.name, [&flags, name = spec.name](const std::string& v) { flags.values[name] = v; },
        spec.help + " [" + spec.type + " " + spec.range + "; " + where + "]");
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
