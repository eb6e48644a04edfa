// Which algorithm a model folder holds, read from its config.json's model_type (resnet, segformer, detr).
#pragma once
#include <string>

#include "em/core/algo.hpp"

namespace em::models {

// Throws em::Error naming the folder when it has no config.json or an unsupported model_type.
Algo algo_of_model_dir(const std::string& model_dir);

}  // namespace em::models
