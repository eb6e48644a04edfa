// The processes of one data-parallel run and the collectives between them, on PyTorch's c10d: a TCPStore for the
// rendezvous (hosted by rank 0 at MASTER_ADDR:MASTER_PORT), ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA where
// the LibTorch has it. A Group of one process (the default) makes every collective the identity, so single-process
// code runs the same path. Collectives must be called in the same order on every rank (c10d's rule).
//
// A collective that fails because a peer died (or timed out after --ddp_timeout) throws em::Error naming the lost
// rank(s), found from the heartbeats every rank keeps in the store.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "em/dist/launch.hpp"

namespace em::dist {

class Comm;  // the c10d backend behind a Group (group.cpp)

class Group {
 public:
  // A group of one process: rank 0, size 1, every collective the identity.
  Group();
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Joins the run described by `env` (a group of one when env.world_size == 1): the rendezvous on the TCPStore,
  // checks that every rank agrees on the world size and no rank is claimed twice, then the backend for `device`
  // (Gloo for CPU, NCCL for CUDA). Fails with a one-line em::Error on an unreachable master, a port in use, a
  // world-size mismatch or a rendezvous that times out after `timeout`.
  static std::unique_ptr<Group> join(const LaunchEnv& env, const torch::Device& device,
                                     std::chrono::milliseconds timeout);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool single() const { return size_ == 1; }
  const torch::Device& device() const { return device_; }

  // In place, blocking: the element-wise sum over ranks (identical bits on every rank afterwards).
  void all_reduce_sum(torch::Tensor& tensor);
  // In place, asynchronous: returns a handle; wait(handle) before reading `tensor`.
  class Pending;
  std::shared_ptr<Pending> all_reduce_sum_async(torch::Tensor& tensor);
  void wait(Pending& pending);
  // In place: root's values everywhere.
  void broadcast(torch::Tensor& tensor, int root = 0);
  // Every rank's bytes, in rank order (sizes may differ).
  std::vector<std::string> all_gather_bytes(const std::string& bytes);
  void barrier();

  // "lost rank 1 (pid 123 on host-a): ..." for an exception a collective threw: which ranks stopped their heartbeat.
  std::string explain_failure(const std::string& what, const std::string& during) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<Comm> comm_;
  bool failed_ = false;  // a collective failed: the backend is left to the process's exit
};

}  // namespace em::dist
