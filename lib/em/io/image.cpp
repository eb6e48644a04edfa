#include "em/io/image.hpp"

#include <atomic>

#include "em/core/error.hpp"
#include "em/io/file.hpp"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

// Defined in stb_impl.cpp, the translation unit that owns stb's state.
void em_stbi_clear_failure_reason();

namespace em::io {
namespace {

[[noreturn]] void not_an_image(const std::string& what, const std::string& reason) {
  fail_at(what, "not an image ({})", reason);
}

bool is_truncation_reason(const std::string& reason);

uint32_t le16(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | (static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t le32(std::string_view b, size_t at) { return le16(b, at) | (le16(b, at + 2) << 16); }
uint32_t be32(std::string_view b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) | (uint32_t(uint8_t(b[at + 2])) << 8) |
         uint8_t(b[at + 3]);
}

// Width and height from the header where it sits at a fixed place, so the size limit is checked (and named) before
// stb, whose own limit (2^30 bytes) answers only "unknown image type". {0, 0} when not known.
std::pair<int64_t, int64_t> header_dimensions(const std::string& format, std::string_view b) {
  if (format == "PNG" && b.size() >= 24 && b.substr(12, 4) == "IHDR") return {be32(b, 16), be32(b, 20)};
  if (format == "GIF" && b.size() >= 10) return {le16(b, 6), le16(b, 8)};
  if (format == "BMP" && b.size() >= 26 && le32(b, 14) >= 40)
    return {std::abs(int64_t(int32_t(le32(b, 18)))), std::abs(int64_t(int32_t(le32(b, 22))))};
  return {0, 0};
}

// A complete PNG ends with the IEND chunk and a complete JPEG with the EOI marker: when decoding fails and the
// end is missing, the file was cut off (stb's own reason is often unrelated or absent then).
bool misses_end_marker(const std::string& format, std::string_view b) {
  static const std::string_view kIend("\x00\x00\x00\x00IEND\xae\x42\x60\x82", 12);
  if (format == "PNG") return b.size() < kIend.size() || b.substr(b.size() - kIend.size()) != kIend;
  if (format == "JPEG") {
    // Some writers pad after EOI; look for it near the end.
    std::string_view tail = b.substr(b.size() > 64 ? b.size() - 64 : 0);
    return tail.find("\xff\xd9") == std::string_view::npos;
  }
  return false;
}

[[noreturn]] void decode_failed(const std::string& what, const std::string& format, std::string_view bytes) {
  const char* r = stbi_failure_reason();  // thread_local in stb compiled as C++ (see stb_impl.cpp)
  std::string reason = r ? r : "";
  if (misses_end_marker(format, bytes) || is_truncation_reason(reason) || bytes.size() < 32)
    not_an_image(what, "truncated " + format);
  not_an_image(what, "corrupt " + format + (reason.empty() ? "" : ": " + reason));
}

bool looks_like_text(std::string_view bytes) {
  size_t n = std::min<size_t>(bytes.size(), 512);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return n > 0;  // UTF-8 bytes >= 0x80 count as text too
}

// Byte count a complete uncompressed file needs, or 0 when the format compresses (then stb itself notices a short
// file) or the header is too short to say. stb fills missing pixels of BMP/TGA/PNM with zeros instead of failing,
// so without this a half-copied BMP would train as a half-black image.
size_t expected_uncompressed_size(const std::string& format, std::string_view b) {
  if (format == "BMP" && b.size() >= 30) {
    uint32_t header = le32(b, 14);
    int64_t width, height, bpp, compression = 0;
    if (header == 12) {
      width = le16(b, 18), height = le16(b, 20), bpp = le16(b, 24);
    } else if (header >= 40 && b.size() >= 34) {
      width = static_cast<int32_t>(le32(b, 18)), height = static_cast<int32_t>(le32(b, 22));
      bpp = le16(b, 28), compression = le32(b, 30);
    } else {
      return 0;
    }
    if (compression != 0 && compression != 3) return 0;  // RLE
    int64_t stride = (width * bpp + 31) / 32 * 4;
    return static_cast<size_t>(le32(b, 10) + stride * std::abs(height));
  }
  if (format == "TGA" && b.size() >= 18) {
    int type = static_cast<uint8_t>(b[2]);
    if (type != 1 && type != 2 && type != 3) return 0;  // 9-11 are RLE
    size_t colormap = b[1] ? le16(b, 5) * ((static_cast<uint8_t>(b[7]) + 7) / 8) : 0;
    size_t pixel_bytes = (static_cast<uint8_t>(b[16]) + 7) / 8;
    return 18 + static_cast<uint8_t>(b[0]) + colormap + size_t(le16(b, 12)) * le16(b, 14) * pixel_bytes;
  }
  if (format == "PNM") {
    // "P5"/"P6", then width, height, maxval as whitespace-separated numbers (with # comments), one whitespace byte.
    size_t pos = 2;
    int64_t values[3] = {0, 0, 0};
    for (auto& v : values) {
      while (pos < b.size() && (std::isspace(static_cast<unsigned char>(b[pos])) || b[pos] == '#')) {
        if (b[pos] == '#')
          while (pos < b.size() && b[pos] != '\n') ++pos;
        else
          ++pos;
      }
      if (pos >= b.size() || !std::isdigit(static_cast<unsigned char>(b[pos]))) return 0;
      while (pos < b.size() && std::isdigit(static_cast<unsigned char>(b[pos])) && v < (1 << 24))
        v = v * 10 + (b[pos++] - '0');
    }
    ++pos;
    int64_t channels = b[1] == '6' ? 3 : 1, sample = values[2] > 255 ? 2 : 1;
    return static_cast<size_t>(pos + values[0] * values[1] * channels * sample);
  }
  return 0;
}

// Debian's stb_image (2.27) trusts a JPEG Huffman table's 16 code counts: when they add up to more than the 256
// symbols a table holds, building the table writes past stbi__huffman's arrays into the decoder's heap state (found by
// fuzz/fuzz_image). Such a table is refused here, before stb sees the file: true when a DHT segment declares one.
// Up to the first scan the segments are walked as stb reads them; after it, where entropy-coded data may hide
// markers from a simple walk, every FF C4 (the only bytes stb can take for a DHT marker; coded data stuffs its FFs)
// is checked. Bytes past the end read as 0, as stb's reader gives them.
bool jpeg_has_oversized_huffman_table(std::string_view b) {
  auto at = [&](size_t i) -> uint32_t { return i < b.size() ? static_cast<uint8_t>(b[i]) : 0; };
  // The DHT segment whose FF C4 marker ends at `pos` (its length field next): stb's loop over its tables.
  auto oversized_dht = [&](size_t pos) {
    int64_t left = int64_t((at(pos) << 8) | at(pos + 1)) - 2;
    pos += 2;
    while (left > 0 && pos < b.size()) {
      const uint32_t q = at(pos++);
      if ((q >> 4) > 1 || (q & 15) > 3) return false;  // stb refuses this table itself
      uint32_t n = 0;
      for (int i = 0; i < 16; ++i) n += at(pos++);
      if (n > 256) return true;
      pos += n;
      left -= 17 + int64_t(n);
    }
    return false;
  };
  size_t pos = 2;  // after SOI
  while (pos + 1 < b.size()) {
    if (at(pos) != 0xFF) {  // padding between segments: stb skips it byte by byte
      ++pos;
      continue;
    }
    uint32_t marker = at(pos + 1);
    while (marker == 0xFF && pos + 2 < b.size()) marker = at(++pos + 1);  // fill bytes
    pos += 2;
    if (marker == 0xC4 && oversized_dht(pos)) return true;
    if (marker == 0xDA) break;  // the first scan
    if (marker == 0xD9) return false;
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    pos += (at(pos) << 8) | at(pos + 1);
  }
  for (; pos + 1 < b.size(); ++pos)
    if (at(pos) == 0xFF && at(pos + 1) == 0xC4 && oversized_dht(pos + 2)) return true;
  return false;
}

// stb reads a PNG's first IDAT into a buffer it has not allocated yet: when that chunk is empty (legal, and harmless
// to the image) it copies 0 bytes to a null pointer, undefined behaviour that the compiler may build on (found by
// fuzz/fuzz_image under UBSan). Returns the file without its empty IDAT chunks when it has some (stb ignores CRCs and
// the chunk order is kept), else "" (decode the bytes as they are).
std::string png_without_empty_idat(std::string_view b) {
  std::string out;
  size_t pos = 8, copied = 0;  // after the signature; bytes up to `copied` are in `out` or still to copy
  while (pos + 12 <= b.size()) {
    const uint32_t length = be32(b, pos);
    if (length > b.size() - pos - 12) break;  // truncated or corrupt: left to stb as it is
    if (length == 0 && b.substr(pos + 4, 4) == "IDAT") {
      out.append(b.substr(copied, pos - copied));
      copied = pos + 12;
    }
    pos += 12 + size_t(length);
  }
  if (copied == 0) return {};
  out.append(b.substr(copied));
  return out;
}

// stb's short reasons that mean the data stopped early (it reads zeros past the end, hence the JPEG ones).
bool is_truncation_reason(const std::string& reason) {
  static const char* kReasons[] = {"outofdata", "expected marker", "no SOF", "bad APP len", "unexpected end",
                                   "not enough pixels", "no IDAT", "no IEND", "truncated"};
  return std::any_of(std::begin(kReasons), std::end(kReasons),
                     [&](const char* r) { return reason.find(r) != std::string::npos; });
}

std::atomic<int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

ImageInfo checked_info(std::string_view bytes, const std::string& what) {
  if (bytes.empty()) not_an_image(what, "zero bytes");
  ImageInfo info;
  info.format = sniff_image_format(bytes);
  if (info.format.empty()) not_an_image(what, looks_like_text(bytes) ? "unknown format: text" : "unknown format");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) not_an_image(what, "file over 2 GiB");
  auto too_large = [&](int64_t w, int64_t h) {
    // Each side first: PNG's 32-bit sides multiply past int64 (found by fuzz/fuzz_image).
    const int64_t limit = max_image_pixels();
    if (w > limit || h > limit || w * h > limit)
      not_an_image(what, fmt::format("too large: {}x{} pixels, limit {} (--max_image_pixels)", w, h, limit));
  };
  auto [header_w, header_h] = header_dimensions(info.format, bytes);
  too_large(header_w, header_h);
  if (info.format == "JPEG" && jpeg_has_oversized_huffman_table(bytes))
    not_an_image(what, "corrupt JPEG: bad DHT header (a Huffman table of more than 256 codes)");
  em_stbi_clear_failure_reason();
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                             &info.width, &info.height, &info.channels))
    decode_failed(what, info.format, bytes);
  if (info.width <= 0 || info.height <= 0) not_an_image(what, "corrupt " + info.format + ": zero size");
  too_large(info.width, info.height);
  size_t expected = expected_uncompressed_size(info.format, bytes);
  if (expected > bytes.size()) not_an_image(what, "truncated " + info.format);
  // A GIF ends with the trailer byte 0x3B; stb decodes a cut-off first frame as if the rest were zeros.
  if (info.format == "GIF" && bytes.back() != 0x3B) not_an_image(what, "truncated GIF");
  return info;
}

}  // namespace

int64_t max_image_pixels() { return g_max_image_pixels.load(std::memory_order_relaxed); }

void set_max_image_pixels(int64_t pixels) {
  if (pixels < 1) usage_fail("--max_image_pixels: expected a number of pixels >= 1, got {}", pixels);
  g_max_image_pixels.store(pixels, std::memory_order_relaxed);
}

std::string sniff_image_format(std::string_view b) {
  auto starts = [&](std::string_view magic) { return b.size() >= magic.size() && b.substr(0, magic.size()) == magic; };
  if (starts("\x89PNG\r\n\x1a\n")) return "PNG";
  if (starts("\xff\xd8")) return "JPEG";
  if (starts("BM")) return "BMP";
  if (starts("GIF87a") || starts("GIF89a")) return "GIF";
  if (starts("P5") || starts("P6")) return "PNM";
  // TGA has no magic: check the header fields stb's own test checks (colormap type, image type, pixel depth).
  if (b.size() >= 18) {
    int cmap = static_cast<uint8_t>(b[1]), type = static_cast<uint8_t>(b[2]), bpp = static_cast<uint8_t>(b[16]);
    bool type_ok = type == 1 || type == 2 || type == 3 || type == 9 || type == 10 || type == 11;
    bool bpp_ok = bpp == 8 || bpp == 15 || bpp == 16 || bpp == 24 || bpp == 32;
    if (cmap <= 1 && type_ok && bpp_ok && le16(b, 12) > 0 && le16(b, 14) > 0 && !looks_like_text(b.substr(0, 18)))
      return "TGA";
  }
  return "";
}

ImageInfo image_info(std::string_view bytes, const std::string& what) { return checked_info(bytes, what); }

Image decode_image(std::string_view bytes, const std::string& what, int want_channels) {
  if (want_channels < 1 || want_channels > 4) fail("decode_image: want_channels must be 1-4, got {}", want_channels);
  ImageInfo info = checked_info(bytes, what);
  Image image;
  int channels_in_file = 0;
  const std::string cleaned = info.format == "PNG" ? png_without_empty_idat(bytes) : std::string();
  const std::string_view input = cleaned.empty() ? bytes : std::string_view(cleaned);
  em_stbi_clear_failure_reason();
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(input.data()), static_cast<int>(input.size()),
                            &image.width, &image.height, &channels_in_file, want_channels),
      stbi_image_free);
  if (!data) decode_failed(what, info.format, bytes);
  image.channels = want_channels;
  image.pixels.assign(data.get(), data.get() + image.size());
  return image;
}

Image read_image(const std::string& path, int want_channels) {
  return decode_image(read_file(path), path, want_channels);
}

std::string encode_png(const Image& image) {
  if (image.channels < 1 || image.channels > 4 || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != image.size())
    fail("encode_png: bad image {}x{}x{} with {} bytes", image.width, image.height, image.channels,
         image.pixels.size());
  std::string out;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &out, image.width, image.height, image.channels, image.pixels.data(),
                              image.width * image.channels))
    fail("encode_png: stb_image_write failed for a {}x{}x{} image", image.width, image.height, image.channels);
  return out;
}

void write_png(const std::string& path, const Image& image) { write_file_atomic(path, encode_png(image)); }

}  // namespace em::io
