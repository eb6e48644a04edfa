// Progress of long work on stderr: redrawn in place with '\r' on a terminal, otherwise whole lines at a steady
// pace (every `line_interval_s`), so logs of CI jobs and Makefiles stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace em {

class Progress {
 public:
  // `unit` names what is counted ("step", "image"); total 0 = unknown.
  Progress(std::string label, int64_t total, std::string unit = "step", double line_interval_s = 10.0);
  ~Progress();

  // Work that starts part-way (a resumed run): `done` items are already complete; nothing is drawn yet, and the
  // rate counts only what is done from here.
  void start_at(int64_t done);
  // done: items completed so far; detail: extra fields ("epoch 1.25 loss 0.432 118 img/s").
  void update(int64_t done, const std::string& detail = "");
  // Prints the final state (even if the last update was throttled) and ends the line; off a terminal, not again
  // when the last line drawn already shows it.
  void finish(const std::string& detail = "");

  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  void draw(bool final_line);
  std::string label_, unit_, detail_;
  int64_t total_ = 0, done_ = 0, start_done_ = -1, drawn_done_ = -1;
  std::string drawn_detail_;
  double interval_s_;
  bool tty_, finished_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace em
