#include "em/models/model_folder.hpp"

#include "em/core/error.hpp"
#include "em/models/config_fields.hpp"
#include "em/models/detr.hpp"
#include "em/models/resnet.hpp"
#include "em/models/segformer.hpp"

#include <fmt/ranges.h>

namespace em::models {
namespace fs = std::filesystem;
namespace {

// Each algorithm's model family, by the Algo of core/algo.cpp's table.
struct FamilyRow {
  Algo algo;
  std::vector<std::string> (*builtin_names)();
};
constexpr FamilyRow kFamilies[] = {
    {Algo::classification, ResNetConfig::builtin_names},
    {Algo::segmentation, SegformerConfig::builtin_names},
    {Algo::detection, DetrConfig::builtin_names},
};
static_assert(one_row_per_algo(kFamilies), "kFamilies: one model family per algorithm, in enum order");

}  // namespace

std::vector<std::string> builtin_model_names(Algo algo) { return kFamilies[index_of(algo)].builtin_names(); }

Algo algo_of_model_dir(const std::string& model_dir) {
  const fs::path config = fs::path(model_dir) / "config.json";
  std::error_code ec;
  if (!fs::exists(config, ec))
    fail("{}: not a model folder (no config.json); pass the model/ folder of a run (e.g. run/model)", model_dir);
  return config::algo_of_config(io::read_json_file(config.string()), config.string());
}

bool ModelFolder::has_preprocessor() const {
  std::error_code ec;
  return fs::exists(preprocessor_path, ec);
}

ModelFolder open_model_folder(const fs::path& dir, Algo algo) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("{}: not a model folder (expected config.json, model.safetensors, preprocessor_config.json)", dir.string());
  ModelFolder folder;
  folder.dir = dir;
  folder.config_path = dir / "config.json";
  folder.preprocessor_path = dir / "preprocessor_config.json";
  folder.config = io::read_json_file(folder.config_path.string());
  const AlgoInfo& row = algo_info(algo);
  // A config.json that is not an object, or whose model_type is not a string, fails here naming the file.
  const std::string type = config::model_type_of(folder.config, "?", folder.config_path.string());
  if (type != row.model_type)
    fail("{}: model_type '{}' is not a {} model (expected \"{}\")", folder.config_path.string(), type, row.name,
         row.model_type);
  return folder;
}

std::string model_config_path(const std::string& model_config) {
  std::error_code ec;
  if (model_config.empty() || !fs::exists(model_config, ec)) return "";
  fs::path p = model_config;
  if (fs::is_directory(p, ec)) p /= "config.json";
  return p.string();
}

void unknown_model_config(const std::string& model_config, Algo algo, const std::vector<std::string>& builtin_names) {
  usage_fail("--model_config: '{}' is neither a config.json file nor a built-in {} model ({})", model_config,
             algo_name(algo), fmt::join(builtin_names, ", "));
}

}  // namespace em::models
