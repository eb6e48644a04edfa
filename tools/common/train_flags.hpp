// CLI11 bindings of the library's training options: every hyperparameter of em::train::param_specs() becomes
// --<name> VALUE, applied after --hyperparameters FILE so flags win over the file.
#pragma once
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "em/train/trainer.hpp"

namespace em::cli {

struct TrainFlags {
  std::string algo;
  std::string hyperparameters_file;
  std::map<std::string, std::string> values;  // flag name -> text, only the flags given
  std::string resume;                         // --resume_from_checkpoint [DIR]
  train::TrainOptions options;
};

void bind_train_flags(CLI::App& app, TrainFlags& flags);
// After parsing: defaults for --algo, then the file, then the flags; validates. Throws em::UsageError.
train::TrainOptions resolve_train_options(const CLI::App& app, TrainFlags& flags);

}  // namespace em::cli
