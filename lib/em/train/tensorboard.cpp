#include "em/train/tensorboard.hpp"

#include "em/core/error.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <unistd.h>

namespace em::train {
namespace fs = std::filesystem;
namespace {

// Byte-at-a-time table for the reflected Castagnoli polynomial; event files are small, so this is plenty fast.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// --- protobuf wire format (https://protobuf.dev/programming-guides/encoding/) ---
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t{field} << 3) | type); }
template <typename T>
void put_little_endian(std::string& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86/ARM Linux are little-endian, as the wire format is
  out.append(bytes, sizeof(T));
}
void put_bytes_field(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

// tensorflow/core/util/event.proto: Event{double wall_time = 1; int64 step = 2; oneof what {string file_version = 3;
// Summary summary = 5; SessionLog session_log = 7;}}.
// summary.proto: Summary{repeated Value value = 1}, Value{string tag = 1; float simple_value = 2}.
std::string encode_event_header(double wall_time, int64_t step) {
  std::string event;
  put_tag(event, 1, kFixed64);
  put_little_endian(event, wall_time);
  if (step != 0) {  // proto3 leaves default values out
    put_tag(event, 2, kVarint);
    put_varint(event, static_cast<uint64_t>(step));  // negative int64 = 10-byte two's complement varint
  }
  return event;
}

std::string encode_scalar_event(const std::string& tag, float value, int64_t step, double wall_time) {
  std::string summary_value;
  put_bytes_field(summary_value, 1, tag);
  put_tag(summary_value, 2, kFixed32);
  put_little_endian(summary_value, value);
  std::string summary;
  put_bytes_field(summary, 1, summary_value);
  std::string event = encode_event_header(wall_time, step);
  put_bytes_field(event, 5, summary);
  return event;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  for (char& c : name)
    if (c == '/') c = '_';
  return name;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) crc = kCrc32cTable[(crc ^ b) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

double EventWriter::now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventWriter::EventWriter(const fs::path& logdir) {
  std::error_code ec;
  fs::create_directories(logdir, ec);
  if (ec) fail("{}: cannot create the TensorBoard folder ({})", logdir.string(), ec.message());
  double wall_time = now();
  std::string base = fmt::format("events.out.tfevents.{}.{}", static_cast<int64_t>(wall_time), host_name());
  // A second writer in the same second (a quick resume) gets a suffix instead of clobbering the first file;
  // "x" = O_EXCL, so two processes can never share one file either.
  for (int attempt = 0; attempt < 1000 && !file_; ++attempt) {
    path_ = logdir / (attempt == 0 ? base : fmt::format("{}.{}.{}", base, ::getpid(), attempt));
    file_ = std::fopen(path_.c_str(), "wbxe");
    if (!file_ && errno != EEXIST) fail("{}: cannot create event file ({})", path_.string(), std::strerror(errno));
  }
  if (!file_) fail("{}: cannot find a free event file name in the folder", logdir.string());
  std::string version = encode_event_header(wall_time, 0);
  put_bytes_field(version, 3, "brain.Event:2");
  write_record(version);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(encode_scalar_event(tag, static_cast<float>(value), step, wall_time));
}

// event.proto: SessionLog session_log = 7; SessionLog{SessionStatus status = 1} with START = 1.
void EventWriter::add_session_start(int64_t step, double wall_time) {
  std::string session_log;
  put_tag(session_log, 1, kVarint);
  put_varint(session_log, 1);
  std::string event = encode_event_header(wall_time, step);
  put_bytes_field(event, 7, session_log);
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(event);
}

void EventWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fflush(file_) != 0) fail("{}: write failed ({})", path_.string(), std::strerror(errno));
}

// TFRecord framing: uint64 length, masked CRC of those 8 bytes, data, masked CRC of data (all little-endian).
void EventWriter::write_record(std::string_view data) {
  std::string record;
  record.reserve(data.size() + 16);
  put_little_endian(record, static_cast<uint64_t>(data.size()));
  put_little_endian(record, masked_crc32c(std::string_view(record.data(), 8)));
  record.append(data.data(), data.size());
  put_little_endian(record, masked_crc32c(data));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    fail("{}: write failed ({})", path_.string(), std::strerror(errno));
}

}  // namespace em::train
