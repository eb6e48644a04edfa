// em-serve's memory bound: what decoding and preparing a request's images will hold, estimated from the image
// headers before anything is decoded, checked against a per-request limit and reserved from a per-process budget.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "em/infer/predictor.hpp"

namespace em::serve {

struct MemoryLimits {
  int64_t request_mb = 2048;    // one request's decoded images and model inputs; more: 413
  int64_t in_flight_mb = 4096;  // all requests' together; a request that does not fit waits, then gets 503
  int64_t wait_ms = 10000;      // how long a request waits for room in the process budget
  void validate() const;        // throws em::UsageError naming the flag
};

// Bytes a request of these encoded images holds while it is prepared and waits for its forward pass: every
// model input is held until the pass (36 bytes a pixel, measured; the float tensor itself is 12); one image at a
// time is decoded (8 bytes a pixel: 8-bit RGB, the decoder's buffers, preprocessing's RGB copy), so the largest
// decoded image counts once. Headers only; throws em::Error naming
// "request: instances[i]" for an instance that is not an image.
int64_t request_memory_bytes(const infer::Predictor& predictor, const std::vector<std::string>& images);

// A counting semaphore of bytes: reserve() waits until the bytes fit, the Reservation gives them back.
class MemoryBudget {
 public:
  explicit MemoryBudget(int64_t capacity_bytes) : capacity_(capacity_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) {
      other.budget_ = nullptr;
    }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { release(); }
    explicit operator bool() const { return budget_ != nullptr; }
    void release();

   private:
    friend class MemoryBudget;
    Reservation(MemoryBudget* budget, int64_t bytes) : budget_(budget), bytes_(bytes) {}
    MemoryBudget* budget_ = nullptr;
    int64_t bytes_ = 0;
  };

  // Waits up to `wait` for `bytes` (at most the capacity) to fit; an empty Reservation when they did not.
  Reservation reserve(int64_t bytes, std::chrono::milliseconds wait);
  int64_t capacity() const { return capacity_; }
  int64_t in_use() const;

 private:
  const int64_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  int64_t in_use_ = 0;
};

}  // namespace em::serve
