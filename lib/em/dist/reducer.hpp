// Data-parallel gradients: the mean of every rank's gradient, all-reduced in buckets while backward still runs (as
// PyTorch's DDP Reducer does). A hook on each parameter copies its gradient into its bucket as soon as autograd has
// it; a full bucket is all-reduced asynchronously, buckets always in the same order on every rank (c10d matches
// collectives by order), so communication overlaps the rest of backward. finish() after backward launches what is
// left, waits, and writes each parameter's mean gradient back into .grad.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <torch/torch.h>

#include "em/dist/group.hpp"

namespace em::dist {

// Rank 0's values of `tensors` copied into every rank's, in place (one broadcast per dtype, coalesced).
void broadcast_from_rank0(Group& group, const std::vector<torch::Tensor>& tensors);

class GradientReducer {
 public:
  // `params`: the trained parameters in model order (buckets follow the reverse order, roughly backward's). Bucket
  // caps as DDP's defaults: 1 MiB for the first bucket (so communication starts early), 25 MiB after.
  GradientReducer(Group& group, std::vector<torch::Tensor> params, size_t bucket_bytes = 25u << 20,
                  size_t first_bucket_bytes = 1u << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward: every parameter's .grad is the mean over ranks (identical bits on every rank).
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  // Seconds finish() has waited for communication in all, and how often it ran: the part of the all-reduce that
  // backward did not hide.
  double wait_seconds() const { return wait_seconds_; }
  int64_t steps() const { return steps_; }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offsets; // each parameter's offset in flat
    torch::Tensor flat;           // the bucket's gradients, concatenated
    size_t ready = 0;             // parameters whose gradient arrived this step
    std::shared_ptr<Group::Pending> work;
  };

  void on_gradient(size_t index, const torch::Tensor& grad);
  void launch_ready_buckets();  // in bucket order, only a prefix of complete buckets

  Group& group_;
  std::vector<torch::Tensor> params_;
  std::vector<unsigned> hooks_;
  std::vector<size_t> bucket_of_;     // parameter -> bucket
  std::vector<size_t> slot_of_;       // parameter -> position in its bucket
  std::vector<bool> arrived_;         // parameter -> gradient seen this step
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  std::mutex mutex_;                  // hooks may run on autograd's device threads (CUDA)
  double wait_seconds_ = 0;
  int64_t steps_ = 0;
};

}  // namespace em::dist
