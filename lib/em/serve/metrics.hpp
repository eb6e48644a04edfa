// em-serve's metrics, exposed by GET /metrics in Prometheus' text format (version 0.0.4): the counters and
// histograms the server keeps, and the text writer. Names follow Prometheus' conventions (docs/em-serve.md lists
// them): emkit_ prefix, base units (seconds, bytes), _total for counters.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace em::serve {

// A Prometheus histogram: cumulative counts of observations <= each upper bound, plus +Inf, their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative;  // one per bound; the +Inf bucket is `count`
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is (largest bound, +Inf)
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What one model's batcher and requests add up to.
class ModelMetrics {
 public:
  ModelMetrics();
  // A forward pass of `images` images that took `seconds` (the batcher's observer).
  void record_pass(int64_t images, double seconds);
  // An answered request to one of the model's predict routes, from its head to its answer.
  void record_request(double seconds) { request_seconds.observe(seconds); }
  // Images per second over the last kRateWindow (or since the first pass, when that is shorter).
  double images_per_second() const;
  static constexpr std::chrono::seconds kRateWindow{10};

  Histogram request_seconds;
  Histogram batch_size;

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mutex_;
  std::deque<std::pair<Clock::time_point, int64_t>> recent_;  // passes within the window
};

// Requests by (route, model, HTTP status).
class RequestCounts {
 public:
  void add(const std::string& route, const std::string& model, int status);
  std::map<std::tuple<std::string, std::string, int>, uint64_t> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_;
};

// The text exposition format: one # HELP and # TYPE per family, then its samples.
class PrometheusText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void family(const std::string& name, const std::string& type, const std::string& help);
  void sample(const std::string& name, const Labels& labels, double value);
  void histogram(const std::string& name, const Labels& labels, const Histogram::Snapshot& h);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};
// A label value with \, " and newline escaped as the format asks.
std::string escape_label_value(const std::string& value);
// A sample value as Prometheus writes it: integers without a fraction, +Inf/-Inf/NaN spelled out.
std::string format_sample_value(double value);

// This process's resident set (bytes, from /proc/self/statm) and start time (Unix seconds, from /proc); 0 when
// unknown.
int64_t process_resident_bytes();
double process_start_time_seconds();

}  // namespace em::serve
