#include "em/serve/memory_budget.hpp"

#include "em/core/error.hpp"
#include "em/io/image.hpp"

#include <algorithm>

namespace em::serve {

void MemoryLimits::validate() const {
  if (request_mb < 1 || request_mb > (1LL << 30))
    usage_fail("--max_request_mb {}: must be in [1, 2^30] MiB", request_mb);
  if (in_flight_mb < request_mb)
    usage_fail("--max_memory_in_flight_mb {}: must be at least --max_request_mb ({}), or no request of that size "
               "could ever run", in_flight_mb, request_mb);
  if (in_flight_mb > (1LL << 30)) usage_fail("--max_memory_in_flight_mb {}: must be at most 2^30 MiB", in_flight_mb);
  if (wait_ms < 0 || wait_ms > 600000) usage_fail("--memory_wait_ms {}: must be in [0, 600000]", wait_ms);
}

int64_t request_memory_bytes(const infer::Predictor& predictor, const std::vector<std::string>& images) {
  // The decoded RGB image, the decoder's own buffers and preprocessing's RGB copy: measured 8.4 bytes per pixel
  // of peak RSS for a 25-megapixel PNG.
  constexpr int64_t kDecodedBytesPerPixel = 8;
  // A [3, H, W] float32 input is 12 bytes a pixel, but a request of many images peaks at 3x that (measured: 29 KB
  // per 28x28 image, 111 KB per 56x56 one, 30000 images in one request): the estimate follows the measurement.
  constexpr int64_t kInputBytesPerPixel = 36;
  int64_t inputs = 0, largest_decoded = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const io::ImageInfo info = io::image_info(images[i], fmt::format("request: instances[{}]", i));
    largest_decoded = std::max(largest_decoded, kDecodedBytesPerPixel * info.width * info.height);
    inputs += kInputBytesPerPixel * predictor.input_pixels(info.width, info.height);
  }
  return inputs + largest_decoded;
}

MemoryBudget::Reservation& MemoryBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
  }
  return *this;
}

void MemoryBudget::Reservation::release() {
  if (!budget_) return;
  {
    std::lock_guard<std::mutex> lock(budget_->mutex_);
    budget_->in_use_ -= bytes_;
  }
  budget_->freed_.notify_all();
  budget_ = nullptr;
}

MemoryBudget::Reservation MemoryBudget::reserve(int64_t bytes, std::chrono::milliseconds wait) {
  if (bytes > capacity_) return {};
  std::unique_lock<std::mutex> lock(mutex_);
  if (!freed_.wait_for(lock, wait, [&] { return in_use_ + bytes <= capacity_; })) return {};
  in_use_ += bytes;
  return {this, bytes};
}

int64_t MemoryBudget::in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

}  // namespace em::serve
