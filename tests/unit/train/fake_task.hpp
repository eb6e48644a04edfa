// A tiny Task for the trainer's tests: a linear classifier (4 features -> 3 classes, no BatchNorm or dropout) on 20
// made-up samples, so that runs take milliseconds and batch compositions can be compared exactly.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/tensor/safetensors.hpp"
#include "em/train/task.hpp"

namespace em::test {

class FakeTask : public em::train::Task {
 public:
  static constexpr int64_t kSize = 20;

  // `init_seed` draws the starting weights; `fail_at_call` > 0: the loss() call of that number throws (a crash).
  explicit FakeTask(uint64_t init_seed, int64_t fail_at_call = 0) : fail_at_call_(fail_at_call) {
    torch::manual_seed(init_seed);
    linear_ = torch::nn::Linear(4, 3);
    auto i = torch::arange(kSize, torch::kFloat32);
    features_ = torch::stack({torch::sin(i), torch::cos(i), i / kSize, torch::ones({kSize})}, 1);
    labels_ = torch::arange(kSize, torch::kInt64).remainder(3);
  }
  torch::nn::Module& model() override { return *linear_; }
  int64_t train_size() const override { return kSize; }
  em::tensor::Batch train_batch(const std::vector<int64_t>& indices, int64_t) override {
    auto index = torch::tensor(indices, torch::kInt64);
    em::tensor::Batch batch;
    batch.pixel_values = features_.index_select(0, index);
    batch.labels = labels_.index_select(0, index);
    batch.indices = indices;
    return batch;
  }
  em::train::LossOutput loss(const em::tensor::Batch& batch) override {
    if (++calls_ == fail_at_call_) throw std::runtime_error("simulated crash");
    return {torch::nn::functional::cross_entropy(linear_(batch.pixel_values), batch.labels), {}};
  }
  em::train::EvalResult evaluate(const em::train::EvalOptions&) override {
    torch::NoGradGuard no_grad;
    return accuracy_result(linear_(features_).argmax(1).eq(labels_).to(torch::kFloat64).mean().item<double>());
  }
  std::vector<em::train::ParamGroup> param_groups(double) override {
    em::train::ParamGroup group;
    for (const auto& p : linear_->named_parameters()) {
      group.names.push_back(p.key());
      group.params.push_back(p.value());
    }
    return {group};
  }
  void save_model(const std::filesystem::path& dir) override {
    std::filesystem::create_directories(dir);
    em::tensor::TensorMap weights;
    for (const auto& p : linear_->named_parameters()) weights[p.key()] = p.value().detach().clone();
    em::tensor::save_safetensors(dir / "model.safetensors", weights);
  }
  em::Algo algo() const override { return em::Algo::classification; }  // main metric: accuracy
  const std::vector<std::string>& labels() const override {
    static const std::vector<std::string> names{"a", "b", "c"};
    return names;
  }
  int64_t loss_calls() const { return calls_; }

  static em::train::EvalResult accuracy_result(double accuracy) {
    em::train::EvalResult r;
    r.metrics = em::io::Json{{"accuracy", accuracy}};
    r.scalars = {{"accuracy", accuracy}};
    return r;
  }

 private:
  torch::nn::Linear linear_{nullptr};
  torch::Tensor features_, labels_;
  int64_t fail_at_call_ = 0, calls_ = 0;
};

}  // namespace em::test
