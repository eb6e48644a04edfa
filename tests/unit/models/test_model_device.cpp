// The model families on a device: the module moves, inputs follow (to_model_input), outputs are read on the CPU,
// and every tensor made inside forward lands on the input's device. On the CPU the moves are no-ops; the [cuda]
// cases (EM_TEST_DEVICE=cuda, scripts/device_check.sh) compare CUDA outputs with the CPU's.
#include <catch2/catch.hpp>

#include "em/io/json.hpp"
#include "em/models/classifier.hpp"
#include "em/models/detector.hpp"
#include "em/models/segmenter.hpp"
#include "unit/models/model_test_support.hpp"
#include "unit/tensor/device_test_support.hpp"
#include "test_support.hpp"

namespace {

// A two-stage bottleneck ResNet classifier of three labels at 32x32, from a config.json as users give one.
em::models::Classifier tiny_classifier(const em::test::TempDir& dir) {
  em::models::ResNetConfig c;
  c.embedding_size = 8;
  c.hidden_sizes = {16, 32};
  c.depths = {1, 1};
  em::io::write_json_file(dir / "tiny.json", c.to_json());
  torch::manual_seed(5);
  auto classifier = em::models::Classifier::create((dir / "tiny.json").string(), {"a", "b", "c"}, 32);
  classifier.model->eval();
  return classifier;
}

em::models::Detector tiny_detector() {
  torch::manual_seed(6);
  auto detector = em::models::Detector::create("detr-resnet-18-tiny", {"cat", "dog"}, 64, 0.0);
  detector.model->eval();
  return detector;
}

em::io::Image test_image(int width, int height) {
  em::io::Image img;
  img.width = width;
  img.height = height;
  img.channels = 3;
  img.pixels.resize(img.size());
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
  return img;
}

}  // namespace

TEST_CASE("on the CPU, to_device and to_model_input move nothing and outputs are CPU tensors", "[models][device]") {
  em::test::TempDir dir;
  auto classifier = tiny_classifier(dir);
  CHECK(classifier.device() == torch::Device(torch::kCPU));
  torch::Tensor x = torch::randn({2, 3, 32, 32});
  CHECK(classifier.to_model_input(x).is_same(x));
  const torch::Tensor before = classifier.model->parameters().front();
  classifier.to_device(torch::kCPU);
  CHECK(classifier.model->parameters().front().is_same(before));
  torch::NoGradGuard no_grad;
  torch::Tensor logits = classifier.logits(x, false);
  CHECK(logits.is_cpu());
  CHECK(logits.sizes() == torch::IntArrayRef({2, 3}));
  // Channels-last before or after the move alike: the input follows the module's format.
  classifier.use_channels_last();
  classifier.to_device(torch::kCPU);
  CHECK(classifier.to_model_input(x).is_contiguous(at::MemoryFormat::ChannelsLast));
}

TEST_CASE("classifier, segmenter and detector on CUDA give the CPU's outputs", "[models][device][cuda]") {
  const auto device = em::test::cuda_test_device();
  if (!device) return;
  torch::NoGradGuard no_grad;
  // TF32 convolutions (LibTorch's default on Ampere and later) round to ~1e-3 relative.
  const double tolerance = 2e-2;

  em::test::TempDir dir;
  auto classifier = tiny_classifier(dir);
  torch::Tensor x = torch::randn({2, 3, 32, 32});
  const torch::Tensor cpu_logits = classifier.logits(x, false);
  classifier.use_channels_last();
  classifier.to_device(*device);
  CHECK(classifier.device() == *device);
  CHECK(classifier.to_model_input(x).device() == *device);
  const torch::Tensor cuda_logits = classifier.logits(x, false);
  CHECK(cuda_logits.is_cpu());
  CHECK(em::test::max_abs_diff(cuda_logits, cpu_logits) < tolerance);
  CHECK(em::test::max_abs_diff(classifier.logits(x, true), cpu_logits) < 0.2);  // bf16 autocast on CUDA

  torch::manual_seed(7);
  auto segmenter = em::models::Segmenter::create(em::test::tiny_segformer_config(), {"road", "sky"}, 48);
  segmenter.model->eval();
  torch::Tensor y = torch::randn({2, 3, 48, 48});
  const torch::Tensor cpu_seg = segmenter.logits(y, false);
  segmenter.to_device(*device);
  const torch::Tensor cuda_seg = segmenter.logits(y, false);
  CHECK(cuda_seg.device() == *device);
  CHECK(em::test::max_abs_diff(cuda_seg.cpu(), cpu_seg) < tolerance);
  const torch::Tensor map = em::models::label_map_at(cuda_seg[0], 50, 40);
  CHECK(em::models::label_map_image(map).width == 40);

  // DETR: masks, position embeddings and query states are made inside forward, on the input's device.
  auto detector = tiny_detector();
  const std::vector<torch::Tensor> images{detector.preprocess(test_image(80, 60)),
                                          detector.preprocess(test_image(50, 70))};
  const std::vector<std::array<int, 2>> sizes{{60, 80}, {70, 50}};
  const auto cpu_det = detector.detect(images, sizes, 0.0, false);
  detector.to_device(*device);
  const auto cuda_det = detector.detect(images, sizes, 0.0, false);
  REQUIRE(cuda_det.size() == cpu_det.size());
  for (size_t i = 0; i < cpu_det.size(); ++i) {
    REQUIRE(cuda_det[i].scores.size() == cpu_det[i].scores.size());
    for (size_t q = 0; q < cpu_det[i].scores.size(); ++q) {
      CHECK(std::abs(cuda_det[i].scores[q] - cpu_det[i].scores[q]) < tolerance);
      for (int k = 0; k < 4; ++k) CHECK(std::abs(cuda_det[i].boxes[q][k] - cpu_det[i].boxes[q][k]) < 1.0);
    }
  }
}
