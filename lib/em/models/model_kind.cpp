#include "em/models/model_kind.hpp"

#include "em/core/error.hpp"
#include "em/io/json.hpp"

#include <filesystem>

namespace em::models {

Algo algo_of_model_dir(const std::string& model_dir) {
  std::filesystem::path config = std::filesystem::path(model_dir) / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(config, ec))
    fail("{}: not a model folder (no config.json); pass the model/ folder of a run (e.g. run/model)", model_dir);
  std::string type = io::read_json_file(config.string()).value("model_type", std::string());
  if (type == "resnet") return Algo::classification;
  if (type == "segformer") return Algo::segmentation;
  if (type == "detr") return Algo::detection;
  fail("{}: model_type '{}' is not one emkit serves (expected resnet, segformer or detr)", config.string(), type);
}

}  // namespace em::models
