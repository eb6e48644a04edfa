// em-train --init: the architecture from the folder's config.json (as HF's from_pretrained takes it), the weights
// loaded by name, the label head kept, reordered or left fresh according to the labels, and a partial load refused
// unless --init_partial. Shared by the three training tasks.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "em/core/algo.hpp"
#include "em/models/model_io.hpp"

namespace em::train {

// What a training run builds: --model_config when given; else, when --init is a folder whose config.json has
// `algo`'s model_type, that config.json (logged); else "" (the algorithm's default model). A --init folder whose
// config.json describes another model type is an em::UsageError naming both. Pass the result where --model_config
// goes (a config.json path is a valid --model_config).
std::string training_model_config(const std::string& model_config, const std::string& init, Algo algo);

// The task head of a model: the tensors a fine-tuning start may leave freshly initialised.
struct InitHead {
  // Module tensor names starting with one of these may be absent from the checkpoint (or of another shape) without
  // --init_partial: the head HF's from_pretrained re-initialises for a new task.
  std::vector<std::string> prefixes;
  // The tensors whose first rows are the labels in id order (a classifier's weight and bias); rows after the labels
  // (DETR's no-object class) are not labels.
  std::vector<std::string> label_rows;
};

// Loads `init` into `module` by name (models::load_init_weights with `options`), then matches the labels:
//  - the checkpoint's config.json has the dataset's labels in the same order: nothing to do;
//  - the same labels in another order: the label rows are reordered so that row i is the dataset's label i;
//  - other labels (or another number of them): the label rows keep their fresh initialisation, with a warning, even
//    when the shapes happen to match (a head trained for other classes is not a start for these);
//  - no config.json (a bare weights file): the rows load when their shapes match.
// Then any model tensor left fresh outside head.prefixes (absent from the checkpoint or of another shape there) is an
// em::UsageError listing them, unless `partial` (--init_partial), which warns instead.
models::InitReport init_model(torch::nn::Module& module, const std::string& init,
                              const std::vector<std::string>& labels, const models::InitOptions& options,
                              const InitHead& head, bool partial);

}  // namespace em::train
