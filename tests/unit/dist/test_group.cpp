// c10d on loopback inside one process: two threads join as ranks 0 and 1 of a Gloo group (TCPStore on a free port),
// as two processes would.
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

#include "em/dist/group.hpp"
#include "em/dist/reducer.hpp"
#include "em/dist/spawn.hpp"
#include "test_support.hpp"

using em::test::with_two_ranks;

TEST_CASE("a group of one makes every collective the identity", "[dist][group]") {
  em::dist::Group group;
  CHECK(group.single());
  torch::Tensor t = torch::tensor({1.0, 2.0});
  group.all_reduce_sum(t);
  group.broadcast(t);
  CHECK(torch::equal(t, torch::tensor({1.0, 2.0})));
  CHECK(group.all_gather_bytes("abc") == std::vector<std::string>{"abc"});
  group.barrier();
}

TEST_CASE("two ranks sum, broadcast and gather over Gloo", "[dist][group]") {
  with_two_ranks([](em::dist::Group& group) {
    const double r = group.rank();
    torch::Tensor t = torch::tensor({1.0 + r, 10.0 * r});
    group.all_reduce_sum(t);
    CHECK(torch::equal(t, torch::tensor({3.0, 10.0})));
    torch::Tensor b = torch::full({3}, r + 7);
    group.broadcast(b, 0);
    CHECK(torch::equal(b, torch::full({3}, 7.0)));
    const auto parts = group.all_gather_bytes(group.rank() == 0 ? std::string("zero") : std::string("one\0x", 5));
    REQUIRE(parts.size() == 2);
    CHECK(parts[0] == "zero");
    CHECK(parts[1] == std::string("one\0x", 5));
    group.barrier();
  });
}

TEST_CASE("the gradient reducer averages every parameter's gradient over ranks, in buckets", "[dist][group]") {
  // Each rank: a small MLP from the same seed, its own input; afterwards every .grad is the mean of the two ranks'
  // gradients, computed here without communication for comparison. Small bucket caps force several buckets.
  // Weights and inputs drawn here, once: torch's generator is global, and the two ranks run on threads.
  torch::manual_seed(3);
  auto shape = [] {
    return torch::nn::Sequential(torch::nn::Linear(4, 16), torch::nn::ReLU(), torch::nn::Linear(16, 8),
                                 torch::nn::ReLU(), torch::nn::Linear(8, 2));
  };
  std::vector<torch::Tensor> init;
  for (const auto& p : shape()->parameters()) init.push_back(p.detach().clone());
  const torch::Tensor inputs[2] = {torch::randn({5, 4}), torch::randn({3, 4})};
  auto make = [&] {
    auto model = shape();
    torch::NoGradGuard no_grad;
    auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(init[i]);
    return model;
  };
  auto input = [&](int rank) { return inputs[rank]; };
  std::vector<torch::Tensor> expected;
  for (int rank = 0; rank < 2; ++rank) {
    auto model = make();
    model->forward(input(rank)).pow(2).mean().backward();
    auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor g = params[i].grad() / 2;
      if (rank == 0) expected.push_back(g); else expected[i] += g;
    }
  }
  with_two_ranks([&](em::dist::Group& group) {
    auto model = make();
    em::dist::GradientReducer reducer(group, model->parameters(), /*bucket_bytes=*/256, /*first_bucket_bytes=*/64);
    CHECK(reducer.num_buckets() >= 3);
    for (int step = 0; step < 2; ++step) {  // the reducer resets between steps
      for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
      model->forward(input(group.rank())).pow(2).mean().backward();
      reducer.finish();
      auto params = model->parameters();
      for (size_t i = 0; i < params.size(); ++i) CHECK(torch::allclose(params[i].grad(), expected[i], 1e-6, 1e-7));
    }
    CHECK(reducer.steps() == 2);
  });
}

TEST_CASE("rendezvous errors are one clear line", "[dist][group]") {
  em::dist::LaunchEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.launcher = "test";
  env.master_port = em::dist::free_local_port();  // nobody serves it
  CHECK_THROWS_WITH(em::dist::Group::join(env, torch::kCPU, std::chrono::seconds(2)),
                    Catch::Contains("could not reach rank 0's store at 127.0.0.1:") ||
                        Catch::Contains("only some of the 2 processes joined"));
}
