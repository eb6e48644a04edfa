// torchvision's ResNet state-dict names (conv1, bn1, layerN.M.convK / bnK / downsample.{0,1}, fc) as HF ResNet's
// (resnet.embedder..., resnet.encoder.stages..., classifier.1), so that a torchvision .pth loads into emkit's ResNet.
#pragma once
#include <string>

#include "em/tensor/safetensors.hpp"

namespace em::models {

// The HF name of one torchvision ResNet tensor name ("layer2.0.downsample.1.running_mean" ->
// "resnet.encoder.stages.1.layers.0.shortcut.normalization.running_mean"), or "" when it is not one.
std::string hf_name_of_torchvision_resnet(const std::string& name);

// Whether `tensors` is a torchvision ResNet's state dict: it has conv1.weight and layer1.0.conv1.weight.
bool is_torchvision_resnet(const tensor::TensorMap& tensors);

// A torchvision ResNet's tensors under HF's names (names of no ResNet tensor are kept, for the loader to report),
// with an info line naming `what`; any other map is returned as it is.
tensor::TensorMap with_hf_resnet_names(tensor::TensorMap tensors, const std::string& what);

}  // namespace em::models
