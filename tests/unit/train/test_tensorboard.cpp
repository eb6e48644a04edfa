// TensorBoard event files: CRC-32C vectors, and a writer round trip read back by an independent TFRecord/protobuf reader.
#include <catch2/catch.hpp>

#include "em/train/tensorboard.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <vector>

using em::train::EventWriter;
namespace fs = std::filesystem;

namespace {

// Bit-at-a-time CRC-32C straight from the definition (no table), so the reader shares no code with the writer.
uint32_t reference_crc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}
uint32_t reference_masked(const std::string& data) {
  uint32_t crc = reference_crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

template <typename T>
T read_le(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

// Minimal protobuf decoding: the fields of one message, by number.
struct Field {
  uint32_t number = 0, wire_type = 0;
  uint64_t varint = 0;
  std::string bytes;  // fixed32/fixed64 raw bytes or the length-delimited payload
};
uint64_t read_varint(const std::string& s, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    REQUIRE(at < s.size());
    auto b = static_cast<unsigned char>(s[at++]);
    v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return v;
  }
  FAIL("varint too long");
  return 0;
}
std::vector<Field> parse_message(const std::string& s) {
  std::vector<Field> fields;
  size_t at = 0;
  while (at < s.size()) {
    uint64_t key = read_varint(s, at);
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    size_t n = 0;
    if (f.wire_type == 0) {
      f.varint = read_varint(s, at);
    } else {
      n = f.wire_type == 1 ? 8 : f.wire_type == 5 ? 4 : f.wire_type == 2 ? read_varint(s, at) : 0;
      REQUIRE((f.wire_type == 1 || f.wire_type == 2 || f.wire_type == 5));
      REQUIRE(at + n <= s.size());
      f.bytes = s.substr(at, n);
      at += n;
    }
    fields.push_back(f);
  }
  return fields;
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::optional<uint64_t> session_status;
  std::vector<std::pair<std::string, float>> values;
};
Event decode_event(const std::string& data) {
  Event e;
  for (const Field& f : parse_message(data)) {
    if (f.number == 1 && f.wire_type == 1) e.wall_time = read_le<double>(f.bytes, 0);
    else if (f.number == 2 && f.wire_type == 0) e.step = static_cast<int64_t>(f.varint);
    else if (f.number == 3 && f.wire_type == 2) e.file_version = f.bytes;
    else if (f.number == 5 && f.wire_type == 2) {
      for (const Field& v : parse_message(f.bytes)) {
        REQUIRE(v.number == 1);
        std::string tag;
        std::optional<float> value;
        for (const Field& x : parse_message(v.bytes)) {
          if (x.number == 1 && x.wire_type == 2) tag = x.bytes;
          if (x.number == 2 && x.wire_type == 5) value = read_le<float>(x.bytes, 0);
        }
        REQUIRE(value.has_value());
        e.values.emplace_back(tag, *value);
      }
    } else if (f.number == 7 && f.wire_type == 2) {
      e.session_status = 0;  // SessionLog{status = 1 (enum)}; an absent status is 0 (STATUS_UNSPECIFIED)
      for (const Field& x : parse_message(f.bytes))
        if (x.number == 1 && x.wire_type == 0) e.session_status = x.varint;
    } else FAIL("unexpected Event field " << f.number);
  }
  return e;
}

// TFRecord: uint64 length, masked crc(length), data, masked crc(data). Every CRC is checked.
std::vector<Event> read_event_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t at = 0;
  while (at < s.size()) {
    REQUIRE(at + 12 <= s.size());
    const auto length = read_le<uint64_t>(s, at);
    CHECK(read_le<uint32_t>(s, at + 8) == reference_masked(s.substr(at, 8)));
    REQUIRE(at + 12 + length + 4 <= s.size());
    const std::string data = s.substr(at + 12, length);
    CHECK(read_le<uint32_t>(s, at + 12 + length) == reference_masked(data));
    events.push_back(decode_event(data));
    at += 12 + length + 4;
  }
  return events;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("CRC-32C matches the RFC 3720 test vectors", "[train][tensorboard]") {
  CHECK(em::train::crc32c("123456789") == 0xE3069283u);
  CHECK(em::train::crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(em::train::crc32c(std::string(32, '\xff')) == 0x62A8AB43u);  // RFC 3720 B.4: 32 bytes of 0xff
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  CHECK(em::train::crc32c(ascending) == 0x46DD794Eu);  // RFC 3720 B.4: 0x00..0x1f
  CHECK(em::train::masked_crc32c("123456789") == reference_masked("123456789"));
}

TEST_CASE("event file round trip: version event, then scalars with step, wall time and float value", "[train][tensorboard]") {
  em::test::TempDir tmp;
  const fs::path logdir = tmp / "runs";
  fs::path written;
  {
    EventWriter writer(logdir);
    written = writer.path();
    writer.add_scalar("train/loss", 2.5, 1, 1700000000.25);
    writer.add_scalar("train/learning_rate", 2e-4, 1, 1700000000.25);
    writer.flush();
    // After flush the records are in the file even while the writer lives (a kill here loses nothing).
    CHECK(read_event_file(written).size() == 3);
    writer.add_scalar("eval/mean_iou", 0.1234567, 1234567890123LL, 1700000001.5);
    writer.add_scalar("negative/step", -1.0, -5, 1700000002.0);
    writer.add_session_start(7, 1700000003.0);
    writer.flush();
  }
  CHECK(written.parent_path() == logdir);
  CHECK(written.filename().string().rfind("events.out.tfevents.", 0) == 0);

  const std::vector<Event> events = read_event_file(written);
  REQUIRE(events.size() == 6);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].values.empty());
  CHECK(events[0].wall_time > 1.6e9);
  CHECK(events[1].step == 1);
  CHECK(events[1].wall_time == 1700000000.25);
  REQUIRE(events[1].values.size() == 1);
  CHECK(events[1].values[0].first == "train/loss");
  CHECK(events[1].values[0].second == 2.5f);
  CHECK(events[2].values[0].second == static_cast<float>(2e-4));
  CHECK(events[3].step == 1234567890123LL);
  CHECK(events[3].values[0].first == "eval/mean_iou");
  CHECK(events[3].values[0].second == static_cast<float>(0.1234567));
  CHECK(events[4].step == -5);
  CHECK(events[4].values[0].second == -1.0f);
  CHECK(events[5].step == 7);
  CHECK(events[5].session_status == std::optional<uint64_t>(1));  // SessionLog.START
  CHECK(events[5].values.empty());
}

TEST_CASE("a second writer in the same folder adds a new file and keeps the first", "[train][tensorboard]") {
  em::test::TempDir tmp;
  fs::path first, second;
  {
    EventWriter a(tmp.path());
    a.add_scalar("train/loss", 1.0, 1);
    a.flush();
    first = a.path();
  }
  {
    EventWriter b(tmp.path());  // same second, same host: must not clobber the first file
    b.add_scalar("train/loss", 0.5, 2);
    b.flush();
    second = b.path();
  }
  CHECK(first != second);
  CHECK(event_files(tmp.path()).size() == 2);
  CHECK(read_event_file(first).size() == 2);
  CHECK(read_event_file(second).size() == 2);
  CHECK(read_event_file(second)[1].step == 2);
}

// Hidden: writes a known pair of event files into $EM_TFEVENTS_DIR for tests/cli/test_tensorboard_reader.sh, which reads
// them with scripts/golden/read_tfevents.py (independent reader) and, where importable, TensorBoard's EventAccumulator.
// The second file is a run resumed at step 3 (after the first had logged up to step 4): TensorBoard must show steps 1-2
// from the first file and 3-4 from the second.
TEST_CASE("write the event file fixture for the CLI reader test", "[.tfevents_fixture]") {
  const char* dir = std::getenv("EM_TFEVENTS_DIR");
  REQUIRE(dir != nullptr);
  {
    EventWriter first{fs::path(dir)};
    first.add_session_start(0, 1700000000.0);  // as em-train does at the start of every session
    for (int step = 1; step <= 4; ++step) {
      first.add_scalar("train/loss", 1.0 / step, step, 1700000000.0 + step);
      first.add_scalar("train/learning_rate", 2e-4 * (5 - step) / 4, step, 1700000000.0 + step);
      first.flush();
    }
  }
  EventWriter resumed{fs::path(dir)};
  resumed.add_session_start(3, 1700000100.0);
  for (int step = 3; step <= 4; ++step) {
    resumed.add_scalar("train/loss", 10.0 + step, step, 1700000100.0 + step);
    resumed.add_scalar("train/learning_rate", 2e-4 * (5 - step) / 4, step, 1700000100.0 + step);
    resumed.flush();
  }
  resumed.add_scalar("eval/accuracy", 0.75, 4, 1700000110.0);
  resumed.flush();
}
