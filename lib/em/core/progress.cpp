#include "em/core/progress.hpp"

#include "em/core/log.hpp"

#include <cstdio>

namespace em {

Progress::Progress(std::string label, int64_t total, std::string unit, double line_interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), interval_s_(line_interval_s),
      tty_(log::stderr_is_terminal()), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && drawn_ && tty_) std::fputc('\n', stderr);
}

std::string Progress::format_duration(double s) {
  if (s < 0 || s != s) return "?";
  auto total = static_cast<long long>(s + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02d}m", total / 3600, static_cast<int>((total % 3600) / 60));
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}s", total);
}

void Progress::update(int64_t done, const std::string& detail) {
  if (start_done_ < 0) start_done_ = done > 0 ? done : 0;  // a resumed run starts counting its rate here
  done_ = done;
  detail_ = detail;
  if (log::level() < log::Level::info) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.1 : interval_s_) && drawn_) return;
  last_draw_ = now;
  draw(false);
}

void Progress::start_at(int64_t done) {
  done_ = done;
  start_done_ = done;
}

void Progress::finish(const std::string& detail) {
  if (!detail.empty()) detail_ = detail;
  finished_ = true;
  if (log::level() < log::Level::info) return;
  if (!tty_ && drawn_ && drawn_done_ == done_ && drawn_detail_ == detail_) return;  // that line is on stderr already
  draw(true);
}

void Progress::draw(bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int64_t counted = done_ - (start_done_ < 0 ? 0 : start_done_);
  double rate = elapsed > 0 ? counted / elapsed : 0.0;
  std::string text = fmt::format("{}: {} {}", label_, unit_, done_);
  if (total_ > 0) text += fmt::format("/{} ({:.0f}%)", total_, 100.0 * done_ / total_);
  if (!detail_.empty()) text += " " + detail_;
  text += fmt::format(" elapsed {}", format_duration(elapsed));
  if (!final_line && total_ > 0 && rate > 0) text += fmt::format(" eta {}", format_duration((total_ - done_) / rate));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s: %s%s", log::program().c_str(), text.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s: %s\n", log::program().c_str(), text.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
  drawn_done_ = done_;
  drawn_detail_ = detail_;
}

}  // namespace em
