#include "em/serve/metrics.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace em::serve {

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double value) {
  // Buckets are "less than or equal": the first bound >= value.
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) s.cumulative.push_back(running += counts_[i]);
  s.sum = sum_;
  s.count = count_;
  return s;
}

ModelMetrics::ModelMetrics()
    // Latency from a few ms (a small model on a batch of one) to a minute (a DETR batch on a busy CPU).
    : request_seconds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      batch_size({1, 2, 4, 8, 16, 32, 64, 128, 256}) {}

void ModelMetrics::record_pass(int64_t images, double) {
  batch_size.observe(static_cast<double>(images));
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  recent_.emplace_back(now, images);
  while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
}

double ModelMetrics::images_per_second() const {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t images = 0;
  for (const auto& [when, n] : recent_)
    if (now - when <= kRateWindow) images += n;
  return static_cast<double>(images) / std::chrono::duration<double>(kRateWindow).count();
}

void RequestCounts::add(const std::string& route, const std::string& model, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[{route, model, status}];
}

std::map<std::tuple<std::string, std::string, int>, uint64_t> RequestCounts::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{}", static_cast<int64_t>(value));
  return fmt::format("{}", value);  // shortest round-trip form
}

void PrometheusText::family(const std::string& name, const std::string& type, const std::string& help) {
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

namespace {
std::string label_text(const PrometheusText::Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i)
    out += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escape_label_value(labels[i].second));
  return out + "}";
}
}  // namespace

void PrometheusText::sample(const std::string& name, const Labels& labels, double value) {
  text_ += name + label_text(labels) + " " + format_sample_value(value) + "\n";
}

void PrometheusText::histogram(const std::string& name, const Labels& labels, const Histogram::Snapshot& h) {
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", format_sample_value(h.upper_bounds[i]));
    sample(name + "_bucket", with_le, static_cast<double>(h.cumulative[i]));
  }
  Labels inf = labels;
  inf.emplace_back("le", "+Inf");
  sample(name + "_bucket", inf, static_cast<double>(h.count));
  sample(name + "_sum", labels, h.sum);
  sample(name + "_count", labels, static_cast<double>(h.count));
}

int64_t process_resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

double process_start_time_seconds() {
  // Field 22 of /proc/self/stat is the start in clock ticks after boot; /proc/stat's btime is the boot time.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  const size_t paren = line.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) ticks = std::atof(field.c_str());
  std::ifstream proc_stat("/proc/stat");
  double boot = 0;
  while (std::getline(proc_stat, line))
    if (line.rfind("btime ", 0) == 0) boot = std::atof(line.c_str() + 6);
  if (boot == 0) return 0;
  return boot + ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace em::serve
