// Weights in and out of any torch::nn::Module by HF parameter name: strict loading of our own model folders, lenient
// --init loading (heads of another size re-initialised), the model/ folder writer, and the channels-last conversion.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "em/io/json.hpp"
#include "em/tensor/safetensors.hpp"

namespace em::models {

// Parameters and buffers by name, detached (they share storage with the module), without num_batches_tracked
// (HF checkpoints do not store it). Pass to tensor::save_safetensors, which writes contiguous NCHW copies.
tensor::TensorMap state_of(const torch::nn::Module& module);

// Copies every tensor of `tensors` into the module's parameter/buffer of the same name. Strict: every tensor in the
// file must be used and every module tensor present (num_batches_tracked may be absent); any missing, unexpected
// or wrongly shaped name is an error listing them all, prefixed with `what` (the file). Floating dtypes convert
// (F16/BF16 files load into F32 models); the module keeps its memory format (channels-last stays channels-last).
void load_state_strict(torch::nn::Module& module, const tensor::TensorMap& tensors, const std::string& what);

// Writes an HF model folder: dir/config.json, dir/model.safetensors and (when not null) dir/preprocessor_config.json,
// each atomically. The folder loads in HF transformers (from_pretrained) and in em-eval/em-predict/em-serve.
void save_model_dir(const std::filesystem::path& dir, const io::Json& config, const torch::nn::Module& module,
                    const io::Json& preprocessor = nullptr);

// The weights of an HF model folder, in transformers' order: dir/model.safetensors, the shards a
// model.safetensors.index.json lists, dir/pytorch_model.bin (torch.save's zip, read without running code:
// tensor/torch_pickle.hpp), the shards of pytorch_model.bin.index.json. Errors name the folder.
tensor::TensorMap load_model_weights(const std::filesystem::path& dir);

// load_state_strict(module, load_model_weights(dir)) for a cold start: checks every name, shape and dtype against
// the files' headers first, then copies each tensor once, from the file's mapping straight into the module's
// tensor (in the module's memory format: a channels-last module is filled channels-last), releasing the file's
// pages as it goes. Memory: the module's weights plus one tensor of the file at a time.
// channels_last: the module's 4-D tensors are first made channels-last (new memory, not copied), then filled.
void load_model_weights_strict(torch::nn::Module& module, const std::filesystem::path& dir,
                               bool channels_last = false);

// What --init did; also logged as warnings.
struct InitReport {
  std::string source;                      // the file or folder read
  std::optional<io::Json> config;          // the folder's config.json, when --init named a folder with one
  std::vector<std::string> loaded;         // module tensors copied from the file
  std::vector<std::string> reinitialised;  // same name, other shape (a head for another label count): left as built
  std::vector<std::string> missing;        // module tensors the file lacks: left as built
  std::vector<std::string> ignored;        // file tensors the module has no use for (an ImageNet head, a pooler...)
};

struct InitOptions {
  // HF's base_model_prefix ("resnet"): a checkpoint of the bare model (ResNetModel: "embedder...") loads into the
  // task model ("resnet.embedder...") and vice versa, as from_pretrained allows.
  std::string base_model_prefix;
};

// Lenient start-from weights for --init: `path` is an HF model folder (config.json + weights as load_model_weights
// finds them), a bare .safetensors file or a PyTorch checkpoint (.pth/.bin, told apart by content); a torchvision
// ResNet's names become HF's (models/torchvision_names.hpp). Copies the tensors whose name and shape match; a tensor of another shape (a classifier for
// another num_labels) keeps the module's fresh initialisation, with a warning naming it and both shapes; tensors
// the module lacks are ignored with a warning giving their count. Throws when no tensor matches at all.
InitReport load_init_weights(torch::nn::Module& module, const std::string& path, const InitOptions& options = {});
// The same on tensors already in memory (`what` names their source in messages).
InitReport load_init_tensors(torch::nn::Module& module, const tensor::TensorMap& tensors, const std::string& what,
                             const InitOptions& options = {});

// Converts every 4-D parameter and buffer to channels-last in place (LibTorch 1.13 has no Module::to(MemoryFormat)).
// With channels-last inputs, convolutions and BatchNorm then run in NHWC end to end (faster with oneDNN on CPU and
// tensor cores on GPU). Call after moving the module to its device and before building the optimizer.
// keep_values = false: the tensors are about to be overwritten (a load follows): new memory, nothing copied.
void to_channels_last(torch::nn::Module& module, bool keep_values = true);

}  // namespace em::models
