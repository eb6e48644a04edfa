// What every model family (Classifier, Segmenter, Detector) does alike with a model folder: tell which algorithm
// it holds, open it as one of an algorithm's (config.json read, model_type checked), resolve --model_config (a
// built-in name or a config.json) and build a module filled strictly from the folder's weights. A family keeps
// only what is its own: its config type, its module and its preprocessor.
#pragma once
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"
#include "em/models/layers.hpp"
#include "em/models/model_io.hpp"
#include "em/tensor/autocast.hpp"
#include "em/tensor/device.hpp"

namespace em::models {

// The algorithm of a model folder, from its config.json's model_type. Throws em::Error naming the folder when it
// has no config.json, or the file when its model_type is none of core/algo's.
Algo algo_of_model_dir(const std::string& model_dir);

struct ModelFolder {
  std::filesystem::path dir;
  std::filesystem::path config_path;        // dir/config.json
  io::Json config;                          // its content; model_type is the algorithm's
  std::filesystem::path preprocessor_path;  // dir/preprocessor_config.json (may be absent: has_preprocessor())
  bool has_preprocessor() const;
};

// Opens `dir` as a model folder of `algo`: a folder whose config.json has the algorithm's model_type (em::Error
// otherwise, naming the folder or the file and what was expected).
ModelFolder open_model_folder(const std::filesystem::path& dir, Algo algo);

// The config.json path --model_config names ("" when it names none: a built-in name or the default).
std::string model_config_path(const std::string& model_config);
// "--model_config: 'X' is neither a config.json file nor a built-in <algo> model (names...)" as em::UsageError.
[[noreturn]] void unknown_model_config(const std::string& model_config, Algo algo,
                                       const std::vector<std::string>& builtin_names);

// --model_config for `algo`: "" = the algorithm's default model (core/algo), an existing path = that config.json
// (or the folder's), else one of Config::builtin_names().
template <typename Config>
Config resolve_model_config(const std::string& model_config, Algo algo) {
  if (model_config.empty()) return Config::builtin(algo_info(algo).default_model);
  if (std::string path = model_config_path(model_config); !path.empty())
    return Config::from_json(io::read_json_file(path), path);
  const std::vector<std::string> names = Config::builtin_names();
  if (std::find(names.begin(), names.end(), model_config) == names.end())
    unknown_model_config(model_config, algo, names);
  return Config::builtin(model_config);
}

// The built-in model names of `algo`'s family (ResNetConfig / SegformerConfig / DetrConfig::builtin_names()).
std::vector<std::string> builtin_model_names(Algo algo);

// What --model_config describes in logs and config checks: the name given, or the algorithm's default model.
inline std::string model_config_name(const std::string& model_config, Algo algo) {
  return model_config.empty() ? std::string(algo_info(algo).default_model) : model_config;
}

// A module built from `config` without initialising its weights, then filled strictly from the folder's weights
// (load_model_weights_strict; channels_last as there), in eval mode. Module is a torch ModuleHolder.
template <typename Module, typename Config>
Module load_module(const Config& config, const std::filesystem::path& dir, bool channels_last = false) {
  Module module{nullptr};
  {
    SkipInit every_tensor_is_loaded_next;
    module = Module(config);
  }
  load_model_weights_strict(*module, dir, channels_last);
  module->eval();
  return module;
}

// The parts every model family holds (Classifier, Segmenter and Detector derive from it): the architecture, the
// module, the image processor that goes with it, and whether the module is channels-last. The module lives on one
// device (the CPU until to_device()); inputs follow it through to_model_input().
template <typename Config, typename Module, typename Processor>
struct ModelParts {
  Config config;
  Module model{nullptr};
  Processor preprocessor;
  bool channels_last = false;

  // The model folder: config.json, model.safetensors, preprocessor_config.json (each atomically).
  void save(const std::filesystem::path& dir) const {
    save_model_dir(dir, config.to_json(), *model, preprocessor.to_json());
  }
  // Moves conv weights to channels-last (faster convolutions on CPU and on GPU tensor cores); inputs follow through
  // to_model_input(). Before or after to_device() alike: moving keeps each tensor's memory format.
  void use_channels_last() {
    to_channels_last(*model);
    channels_last = true;
  }
  // Moves the module's parameters and buffers to `device` (tensor::resolve_device). Call before building the
  // optimizer: it holds the parameters the module has then.
  void to_device(const torch::Device& device) { model->to(device); }
  // Where the module is. Read from the module itself, so a move made through the bare module (Task::model().to())
  // is followed too.
  torch::Device device() const { return tensor::device_of(*model); }
  // pixel_values on the module's device (asynchronous from pinned memory) and in its memory format; the same tensor
  // when it is already both.
  torch::Tensor to_model_input(const torch::Tensor& pixel_values) const {
    const torch::Tensor x = pixel_values.to(device(), /*non_blocking=*/true);
    return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  }
};

// Eval-mode output of a one-input module (logits) in fp32 on the module's device, under bf16 autocast for that
// device when asked; inputs moved there in the module's memory format. The caller holds NoGradGuard.
template <typename Parts>
torch::Tensor fp32_forward(const Parts& parts, const torch::Tensor& pixel_values, bool bf16) {
  const torch::Tensor x = parts.to_model_input(pixel_values);
  tensor::Bf16Autocast autocast(bf16, x.device());
  auto shared = parts.model;  // a holder copy shares the module; forward is not const
  return shared->forward(x).to(torch::kFloat32);
}

// A fresh model in `parts`: `config` with these labels (class id = position), validated (`described` names it in
// errors), the module built from the current torch seed. The caller sets the preprocessor.
template <typename Parts, typename Config>
void build_parts(Parts& parts, Config config, std::vector<std::string> labels, const std::string& described) {
  parts.config = std::move(config);
  parts.config.set_labels(std::move(labels));
  parts.config.validate(described);
  parts.model = decltype(parts.model)(parts.config);
}

// A saved model folder of `algo` in `parts`: config.json through Config::from_json, the module filled strictly
// (load_module), and preprocessor_config.json through Processor::read when the folder has one. Returns the folder:
// when !has_preprocessor() the caller chooses the processor's defaults (and says so).
template <typename Parts>
ModelFolder load_parts(Parts& parts, const std::filesystem::path& dir, Algo algo, bool channels_last) {
  ModelFolder folder = open_model_folder(dir, algo);
  parts.config = decltype(parts.config)::from_json(folder.config, folder.config_path.string());
  parts.model = load_module<decltype(parts.model)>(parts.config, dir, channels_last);
  parts.channels_last = channels_last;
  using Processor = decltype(parts.preprocessor);
  if (folder.has_preprocessor()) parts.preprocessor = Processor::read(folder.preprocessor_path.string());
  return folder;
}

}  // namespace em::models
