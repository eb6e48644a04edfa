#include "em/models/torchvision_names.hpp"

#include "em/core/log.hpp"

#include <vector>

namespace em::models {
namespace {

std::vector<std::string> split(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// "layer3" -> 3 with prefix "layer"; -1 when `s` is not prefix + a positive decimal of at most 3 digits.
int numbered(const std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) != 0 || s.size() == prefix.size() || s.size() > prefix.size() + 3) return -1;
  int n = 0;
  for (size_t i = prefix.size(); i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    n = n * 10 + (s[i] - '0');
  }
  return n;
}

}  // namespace

std::string hf_name_of_torchvision_resnet(const std::string& name) {
  const std::vector<std::string> p = split(name);
  const std::string& leaf = p.back();  // weight, bias, running_mean, running_var, num_batches_tracked
  if (p.size() == 2 && p[0] == "conv1") return "resnet.embedder.embedder.convolution." + leaf;
  if (p.size() == 2 && p[0] == "bn1") return "resnet.embedder.embedder.normalization." + leaf;
  if (p.size() == 2 && p[0] == "fc") return "classifier.1." + leaf;
  const int stage = p.size() >= 4 ? numbered(p[0], "layer") : -1;
  const int block = p.size() >= 4 ? numbered("b" + p[1], "b") : -1;
  if (stage < 1 || block < 0) return "";
  const std::string layer = "resnet.encoder.stages." + std::to_string(stage - 1) + ".layers." + std::to_string(block);
  if (p.size() == 4) {
    const std::string conv = layer + ".layer.";
    if (const int k = numbered(p[2], "conv"); k >= 1) return conv + std::to_string(k - 1) + ".convolution." + leaf;
    if (const int k = numbered(p[2], "bn"); k >= 1) return conv + std::to_string(k - 1) + ".normalization." + leaf;
  }
  if (p.size() == 5 && p[2] == "downsample" && p[3] == "0") return layer + ".shortcut.convolution." + leaf;
  if (p.size() == 5 && p[2] == "downsample" && p[3] == "1") return layer + ".shortcut.normalization." + leaf;
  return "";
}

bool is_torchvision_resnet(const tensor::TensorMap& tensors) {
  return tensors.count("conv1.weight") && tensors.count("layer1.0.conv1.weight");
}

tensor::TensorMap with_hf_resnet_names(tensor::TensorMap tensors, const std::string& what) {
  if (!is_torchvision_resnet(tensors)) return tensors;
  tensor::TensorMap out;
  size_t renamed = 0;
  for (auto& [name, t] : tensors) {
    std::string hf = hf_name_of_torchvision_resnet(name);
    renamed += !hf.empty();
    out.emplace(hf.empty() ? name : std::move(hf), std::move(t));
  }
  log::info("{}: a torchvision ResNet state dict: {} of its {} tensors renamed to HF ResNet's names", what, renamed,
            out.size());
  return out;
}

}  // namespace em::models
