// TensorBoard scalar logging without TensorFlow or protobuf: TFRecord-framed Event protos, hand-encoded.
// EventWriter writes OUT/runs/events.out.tfevents.<unix time>.<hostname>; TensorBoard merges all files in the folder.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

namespace em::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord framing uses.
uint32_t crc32c(std::string_view bytes);
// TFRecord's masked form: rotate right by 15 and add 0xa282ead8 (so CRCs of CRC-bearing data stay strong).
uint32_t masked_crc32c(std::string_view bytes);

// Appends scalar summaries to a new event file. Each writer opens a file of its own (never truncates one), so a resumed
// run adds a new file beside the old ones and TensorBoard shows one continuous curve.
class EventWriter {
 public:
  // Creates logdir if needed and a new events file in it, whose first record is the "brain.Event:2" version event.
  explicit EventWriter(const std::filesystem::path& logdir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Seconds since the Unix epoch, with sub-second precision (TensorBoard's "relative" and "wall" axes use it).
  static double now();

  // One Event{wall_time, step, Summary{Value{tag, simple_value}}}. The value is stored as float32, as TensorBoard does.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = now());
  // A SessionLog START event at `step`. Call once at the start of every training session: step 0 for a fresh run, the
  // checkpoint's step when resuming. TensorBoard takes the first START of a folder as the beginning and every later one
  // as a restart, dropping the points at step >= `step` that earlier files hold: a run resumed from checkpoint-500 after
  // logging up to step 520 shows one clean curve.
  void add_session_start(int64_t step, double wall_time = now());
  // Hands buffered records to the OS: call after each logged step so a kill loses at most that step.
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(std::string_view data);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

}  // namespace em::train
