#include "em/models/model_io.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/file.hpp"
#include "em/io/torch_pickle.hpp"
#include "em/models/torchvision_names.hpp"
#include "em/tensor/torch_pickle.hpp"

#include <algorithm>
#include <fstream>
#include <set>

#include <fmt/ranges.h>
#include <torch/torch.h>

namespace em::models {
namespace fs = std::filesystem;
namespace {

bool is_num_batches_tracked(const std::string& name) {
  static const std::string leaf = "num_batches_tracked";
  return name == leaf ||
         (name.size() > leaf.size() && name.compare(name.size() - leaf.size(), leaf.size(), leaf) == 0 &&
          name[name.size() - leaf.size() - 1] == '.');
}

// Every parameter and buffer by name (the handles alias the module's tensors, so copy_ into them loads in place).
std::map<std::string, torch::Tensor> targets_of(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out.emplace(b.key(), b.value());
  return out;
}

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

// The first few items and a count, so that a message stays one readable line for a 300-tensor mismatch.
std::string some(const std::vector<std::string>& items, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += fmt::format(", ... ({} more)", items.size() - limit);
  return out;
}

// Same dtype, or both floating (F16/BF16 files load into F32 models and back).
bool dtypes_compatible(torch::ScalarType file, torch::ScalarType target) {
  return file == target || (torch::isFloatingType(file) && torch::isFloatingType(target));
}

}  // namespace

tensor::TensorMap state_of(const torch::nn::Module& module) {
  tensor::TensorMap out;
  for (auto& [name, t] : targets_of(module))
    if (!is_num_batches_tracked(name)) out.emplace(name, t.detach());
  return out;
}

namespace {

// What the strict loaders know of a file tensor before reading it.
struct FileTensor {
  std::string name;
  std::vector<int64_t> shape;
  torch::ScalarType dtype;
};

bool fits(const FileTensor& file, const torch::Tensor& target) {
  return target.sizes().equals(file.shape) && dtypes_compatible(file.dtype, target.scalar_type());
}

// Strict: every file tensor used, every module tensor present (num_batches_tracked may be absent), shapes and
// dtypes compatible; otherwise one error listing them all.
void check_strict_fit(const std::map<std::string, torch::Tensor>& targets, const std::vector<FileTensor>& file,
                      const std::string& what) {
  std::set<std::string> in_file;
  for (const auto& t : file) in_file.insert(t.name);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, target] : targets)
    if (!in_file.count(name) && !is_num_batches_tracked(name)) missing.push_back(name);
  for (const auto& t : file) {
    auto it = targets.find(t.name);
    if (it == targets.end()) {
      unexpected.push_back(t.name);
    } else if (!fits(t, it->second)) {
      mismatched.push_back(fmt::format("{} (file [{}] {}, model {} {})", t.name, fmt::join(t.shape, ", "),
                                       c10::toString(t.dtype), shape_of(it->second),
                                       c10::toString(it->second.scalar_type())));
    }
  }
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return;
  std::vector<std::string> parts;
  if (!missing.empty()) parts.push_back(fmt::format("{} missing from the file: {}", missing.size(), some(missing)));
  if (!unexpected.empty()) parts.push_back(fmt::format("{} not in the model: {}", unexpected.size(), some(unexpected)));
  if (!mismatched.empty())
    parts.push_back(fmt::format("{} of another shape or dtype: {}", mismatched.size(), some(mismatched, 4)));
  fail("{}: weights do not fit the model built from its config ({}); the file must hold exactly the model's "
       "tensors under HF names",
       what, fmt::join(parts, "; "));
}

}  // namespace

void load_state_strict(torch::nn::Module& module, const tensor::TensorMap& tensors, const std::string& what) {
  auto targets = targets_of(module);
  std::vector<FileTensor> file;
  for (const auto& [name, t] : tensors) file.push_back({name, t.sizes().vec(), t.scalar_type()});
  check_strict_fit(targets, file, what);
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) targets.at(name).copy_(t);
}

void save_model_dir(const fs::path& dir, const io::Json& config, const torch::nn::Module& module,
                    const io::Json& preprocessor) {
  fs::create_directories(dir);
  tensor::save_safetensors(dir / "model.safetensors", state_of(module));
  if (!preprocessor.is_null()) io::write_json_file(dir / "preprocessor_config.json", preprocessor);
  io::write_json_file(dir / "config.json", config);
}

namespace {

// The weight files of a model folder in HF's order: model.safetensors, the shards of model.safetensors.index.json,
// then the pickled pytorch_model.bin and the shards of its index (index path, shard paths).
std::vector<fs::path> weight_files(const fs::path& dir, fs::path* index_out) {
  std::error_code ec;
  auto sharded = [&](const fs::path& index) {
    // A sharded checkpoint: weight_map names, for every tensor, the shard that holds it.
    io::Json j = io::read_json_file(index.string());
    const io::Json& map = io::require_field(j, "weight_map", index.string());
    if (!map.is_object()) fail("{}: field \"weight_map\": expected an object {{tensor: shard file}}", index.string());
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : map.items()) {
      if (!shard.is_string()) fail("{}: field \"weight_map\": expected shard file names", index.string());
      // A model folder comes from anywhere: its index may not send the reader to a file outside it.
      if (const std::string outside = io::outside_reason(dir, shard.get<std::string>()); !outside.empty())
        fail("{}: field \"weight_map\".\"{}\": {}", index.string(), tensor, outside);
      shards.insert(shard.get<std::string>());
    }
    if (index_out) *index_out = index;
    std::vector<fs::path> out;
    for (const auto& shard : shards) out.push_back(dir / shard);
    return out;
  };
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const fs::path single = dir / name, index = dir / (std::string(name) + ".index.json");
    if (fs::exists(single, ec)) return {single};
    if (fs::exists(index, ec)) return sharded(index);
  }
  fail("{}: no model.safetensors or pytorch_model.bin in this folder (expected an HF model folder with config.json "
       "+ model.safetensors)",
       dir.string());
}

// Whether a weights file is torch.save's (a zip, or the legacy pickle the reader refuses) rather than safetensors:
// by its first bytes, as a .pth, .pt or .bin name says nothing reliable.
bool is_torch_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;  // the safetensors reader says what is wrong with it
  std::ifstream in(path, std::ios::binary);
  char head[16] = {};
  in.read(head, sizeof head);
  return io::looks_like_torch_file(std::string_view(head, static_cast<size_t>(in.gcount())));
}

tensor::TensorMap load_weights_file(const fs::path& path) {
  return is_torch_file(path) ? tensor::load_torch_checkpoint(path.string()) : tensor::load_safetensors(path.string());
}

}  // namespace

tensor::TensorMap load_model_weights(const fs::path& dir) {
  fs::path index;
  const std::vector<fs::path> paths = weight_files(dir, &index);
  if (index.empty()) return load_weights_file(paths.front());
  tensor::TensorMap out;
  for (const auto& p : paths)
    for (auto& [name, t] : load_weights_file(p))
      if (!out.emplace(name, std::move(t)).second) fail("{}: tensor \"{}\" is in two shards", index.string(), name);
  return out;
}

void load_model_weights_strict(torch::nn::Module& module, const fs::path& dir, bool channels_last) {
  fs::path index;
  const std::vector<fs::path> paths = weight_files(dir, &index);
  const std::string what = index.empty() ? paths.front().string() : index.string();
  if (is_torch_file(paths.front())) {  // pickled weights are read whole (nothing to map), then copied in
    if (channels_last) to_channels_last(module, /*keep_values=*/false);
    load_state_strict(module, load_model_weights(dir), what);
    return;
  }
  std::vector<tensor::MappedSafetensors> files;
  std::vector<FileTensor> listing;
  std::set<std::string> seen;
  for (const auto& p : paths) {
    files.emplace_back(p.string());
    for (const auto& e : files.back().entries()) {
      if (!seen.insert(e.name).second) fail("{}: tensor \"{}\" is in two shards", what, e.name);
      listing.push_back({e.name, e.shape, files.back().dtype(e)});
    }
  }
  if (channels_last) to_channels_last(module, /*keep_values=*/false);
  auto targets = targets_of(module);
  check_strict_fit(targets, listing, what);
  torch::NoGradGuard no_grad;
  for (const auto& file : files) {
    for (const auto& e : file.entries()) {
      targets.at(e.name).copy_(file.view(e));
      file.release(e);
    }
  }
}

InitReport load_init_tensors(torch::nn::Module& module, const tensor::TensorMap& tensors, const std::string& what,
                             const InitOptions& options) {
  auto targets = targets_of(module);
  InitReport report;
  report.source = what;

  // Map file names onto module names across HF's base-model prefix (bare ResNetModel <-> ResNetForImageClassification).
  auto has_prefix = [](const std::string& name, const std::string& prefix) { return name.rfind(prefix, 0) == 0; };
  std::string add, strip;
  if (!options.base_model_prefix.empty()) {
    const std::string p = options.base_model_prefix + ".";
    bool model_prefixed = std::any_of(targets.begin(), targets.end(), [&](auto& kv) { return has_prefix(kv.first, p); });
    bool file_prefixed = std::any_of(tensors.begin(), tensors.end(), [&](auto& kv) { return has_prefix(kv.first, p); });
    if (model_prefixed && !file_prefixed) add = p;
    if (!model_prefixed && file_prefixed) strip = p;
  }
  std::map<std::string, std::string> file_name_of;  // module name -> file name
  for (const auto& [name, t] : tensors) {
    std::string mapped = name;
    if (!add.empty()) mapped = add + name;
    if (!strip.empty() && has_prefix(name, strip)) mapped = name.substr(strip.size());
    file_name_of.emplace(mapped, name);
  }

  std::set<std::string> used;
  std::vector<std::string> reinit_detail;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = file_name_of.find(name);
    if (it == file_name_of.end()) {
      if (!is_num_batches_tracked(name)) report.missing.push_back(name);
      continue;
    }
    const torch::Tensor& src = tensors.at(it->second);
    used.insert(it->second);
    if (!src.sizes().equals(target.sizes()) || !dtypes_compatible(src.scalar_type(), target.scalar_type())) {
      if (is_num_batches_tracked(name)) continue;
      report.reinitialised.push_back(name);
      reinit_detail.push_back(fmt::format("{} {} (checkpoint {})", name, shape_of(target), shape_of(src)));
      continue;
    }
    target.copy_(src);
    if (!is_num_batches_tracked(name)) report.loaded.push_back(name);
  }
  for (const auto& [name, t] : tensors)
    if (!used.count(name)) report.ignored.push_back(name);

  if (report.loaded.empty())
    fail("{}: none of its {} tensors matches the model by name and shape (the model expects names like \"{}\", the "
         "file has names like \"{}\"); --init needs a checkpoint of the same architecture under HF names",
         what, tensors.size(), targets.empty() ? "" : targets.begin()->first,
         tensors.empty() ? "" : tensors.begin()->first);
  log::info("--init {}: loaded {} of {} model tensors", what, report.loaded.size(),
            report.loaded.size() + report.reinitialised.size() + report.missing.size());
  if (!report.reinitialised.empty())
    log::warn("--init {}: {} tensors have another shape in the checkpoint (a head for another number of labels?) and "
              "keep their fresh initialisation: {}",
              what, report.reinitialised.size(), some(reinit_detail));
  if (!report.missing.empty())
    log::warn("--init {}: {} model tensors are not in the checkpoint and keep their fresh initialisation: {}", what,
              report.missing.size(), some(report.missing));
  if (!report.ignored.empty())
    log::warn("--init {}: ignored {} checkpoint tensors the model does not have: {}", what, report.ignored.size(),
              some(report.ignored));
  return report;
}

InitReport load_init_weights(torch::nn::Module& module, const std::string& path, const InitOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    fail("{}: no such file or folder (--init takes an HF model folder with config.json + model.safetensors or "
         "pytorch_model.bin, a .safetensors file or a PyTorch checkpoint: .pth, .bin)",
         path);
  std::optional<io::Json> config;
  tensor::TensorMap tensors;
  if (fs::is_directory(path, ec)) {
    tensors = load_model_weights(path);
    const fs::path config_path = fs::path(path) / "config.json";
    if (fs::exists(config_path, ec)) config = io::read_json_file(config_path.string());
  } else {
    tensors = load_weights_file(path);
  }
  tensors = with_hf_resnet_names(std::move(tensors), path);  // a torchvision ResNet .pth
  InitReport report = load_init_tensors(module, tensors, path, options);
  report.config = std::move(config);
  return report;
}

void to_channels_last(torch::nn::Module& module, bool keep_values) {
  torch::NoGradGuard no_grad;
  auto convert = [&](torch::Tensor& t) {
    if (t.dim() != 4) return;
    t.set_data(keep_values ? t.contiguous(torch::MemoryFormat::ChannelsLast)
                           : torch::empty(t.sizes(), t.options().memory_format(torch::MemoryFormat::ChannelsLast)));
  };
  for (auto& p : module.parameters(/*recurse=*/true)) convert(p);
  for (auto& b : module.buffers(/*recurse=*/true)) convert(b);
}

}  // namespace em::models
