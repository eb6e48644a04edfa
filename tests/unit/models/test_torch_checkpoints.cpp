// PyTorch checkpoints in the models: model folders holding pytorch_model.bin, and torchvision ResNet checkpoints in
// emkit's HF-named ResNet: the name mapping at real size (torchvision's resnet50 / resnet18 names against HF's), and
// torchvision's logits from its own forward (tests/golden/torch_pickle/, made by scripts/golden/torch_pickle.py with
// Debian's python3-torchvision) computed by emkit from the .pth.
#include <catch2/catch.hpp>

#include <filesystem>

#include <torch/torch.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/models/model_folder.hpp"
#include "em/models/model_io.hpp"
#include "em/models/resnet.hpp"
#include "em/models/torchvision_names.hpp"
#include "em/tensor/torch_pickle.hpp"
#include "test_support.hpp"
#include "unit/models/model_test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using em::models::hf_name_of_torchvision_resnet;
using em::models::ResNetConfig;
using em::models::ResNetForImageClassification;

namespace {

std::string fixture(const std::string& name) { return "torch_pickle/" + name; }
std::string fixture_path(const std::string& name) {
  return std::string(EM_SOURCE_DIR) + "/tests/golden/" + fixture(name);
}

ResNetForImageClassification model_of(const std::string& config_file) {
  const std::string path = fixture_path(config_file);
  return ResNetForImageClassification(ResNetConfig::from_json(em::io::read_json_file(path), path));
}

}  // namespace

TEST_CASE("torchvision resnet50 and resnet18 names map one to one onto HF ResNet's names and shapes",
          "[models][torchvision]") {
  for (const auto& [torchvision, hf] : {std::pair<std::string, std::string>{"torchvision_resnet50_names.txt",
                                                                            "resnet50_hf_names.txt"},
                                        {"torchvision_resnet18_names.txt", "resnet18_hf_names.txt"}}) {
    INFO(torchvision);
    em::test::NamesAndShapes mapped;
    for (const auto& [name, shape] : em::test::golden_names(fixture(torchvision))) {
      const std::string hf_name = hf_name_of_torchvision_resnet(name);
      INFO(name);
      CHECK_FALSE(hf_name.empty());
      mapped.emplace_back(hf_name, shape);
    }
    std::sort(mapped.begin(), mapped.end());
    CHECK(mapped == em::test::golden_names(hf));
  }
  CHECK(hf_name_of_torchvision_resnet("layer2.0.downsample.1.running_mean") ==
        "resnet.encoder.stages.1.layers.0.shortcut.normalization.running_mean");
  for (const char* other : {"conv1", "layer0.0.conv1.weight", "layer1.x.conv1.weight", "layer1.0.conv.weight",
                            "layer1.0.downsample.2.weight", "resnet.embedder.embedder.convolution.weight",
                            "head.fc.weight"})
    CHECK(hf_name_of_torchvision_resnet(other).empty());
}

TEST_CASE("a torchvision ResNet .pth computes torchvision's logits in emkit's HF-named ResNet within 1e-4",
          "[models][torchvision]") {
  const auto io = em::tensor::read_torch_checkpoint(fixture_path("torchvision_resnet_io.pth")).tensors;
  for (const char* kind : {"bottleneck", "basic"}) {
    INFO(kind);
    auto model = model_of(std::string("torchvision_resnet_") + kind + ".json");
    const std::string pth = fixture_path(std::string("torchvision_resnet_") + kind + ".pth");
    auto tensors = em::tensor::load_torch_checkpoint(pth);
    REQUIRE(em::models::is_torchvision_resnet(tensors));
    // Strict: every tensor of the file has its place in the model and every model tensor is in the file.
    em::models::load_state_strict(*model, em::models::with_hf_resnet_names(std::move(tensors), pth), pth);
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = model->forward(io.at("input"));
    REQUIRE(logits.sizes() == io.at(kind).sizes());
    const double diff = em::test::max_abs_diff(logits, io.at(kind));
    INFO("max |logits - torchvision| = " << diff);
    CHECK(diff <= 1e-4);
  }
}

TEST_CASE("a torchvision .pth given to --init loads every tensor under HF names and says so", "[models][torchvision]") {
  auto model = model_of("torchvision_resnet_bottleneck.json");
  const std::string pth = fixture_path("torchvision_resnet_bottleneck.pth");
  em::models::InitReport report;
  const std::string log = em::test::stderr_of([&] { report = em::models::load_init_weights(*model, pth); });
  CHECK(report.missing.empty());
  CHECK(report.ignored.empty());
  CHECK(report.reinitialised.empty());
  CHECK(report.loaded.size() == em::models::state_of(*model).size());
  CHECK_THAT(log, Catch::Matchers::Contains("a torchvision ResNet state dict: 122 of its 122 tensors renamed"));
}

TEST_CASE("a model folder holding only pytorch_model.bin loads strictly, as the same folder with model.safetensors",
          "[models][torch_pickle]") {
  torch::manual_seed(0);
  const std::string config_path = fixture_path("torchvision_resnet_basic.json");
  const ResNetConfig config = ResNetConfig::from_json(em::io::read_json_file(config_path), config_path);
  ResNetForImageClassification source(config);
  em::test::TempDir dir;
  em::models::save_model_dir(dir / "safetensors", config.to_json(), *source);
  // The same weights as a pickle: LibTorch's torch::pickle_save writes the zip torch.load reads (a dict tagged by
  // torch.jit._pickle.restore_type_tag), a state dict as transformers' save_pretrained(safe_serialization=False)
  // writes one.
  fs::create_directories(dir / "bin");
  fs::copy_file(dir / "safetensors" / "config.json", dir / "bin" / "config.json");
  c10::Dict<std::string, torch::Tensor> state;
  for (const auto& [name, t] : em::models::state_of(*source)) state.insert(name, t);
  const std::vector<char> pickled = torch::pickle_save(state);
  em::io::write_file_atomic(dir / "bin" / "pytorch_model.bin", std::string_view(pickled.data(), pickled.size()));

  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  torch::NoGradGuard no_grad;
  for (bool channels_last : {false, true}) {
    INFO("channels_last " << channels_last);
    auto a = em::models::load_module<ResNetForImageClassification>(config, dir / "safetensors", channels_last);
    auto b = em::models::load_module<ResNetForImageClassification>(config, dir / "bin", channels_last);
    const torch::Tensor input = channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
    CHECK(torch::equal(a->forward(input), b->forward(input)));
    CHECK(torch::equal(em::models::load_model_weights(dir / "bin").at("classifier.1.weight"),
                       source->classifier->weight));
  }

  // transformers' order: model.safetensors first; a broken pytorch_model.bin beside it is never opened.
  em::io::write_file_atomic(dir / "safetensors" / "pytorch_model.bin", "not a pickle");
  CHECK_NOTHROW(em::models::load_module<ResNetForImageClassification>(config, dir / "safetensors"));
  // A wrong file as the only weights: strict loading names it and what is wrong.
  fs::copy_file(fixture_path("legacy.pth"), dir / "bin" / "pytorch_model.bin", fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(em::models::load_module<ResNetForImageClassification>(config, dir / "bin"),
                    Contains("bin/pytorch_model.bin: a PyTorch checkpoint in the legacy format"));
  fs::copy_file(fixture_path("torchvision_resnet_basic.pth"), dir / "bin" / "pytorch_model.bin",
                fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(em::models::load_module<ResNetForImageClassification>(config, dir / "bin"),
                    Contains("weights do not fit the model") && Contains("conv1.weight"));
}
