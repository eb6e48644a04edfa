// Image decoding and encoding (stb_image / stb_image_write) into one interleaved 8-bit type, shared by every tool.
// Decoding is thread-safe (loader workers and em-serve decode in parallel) and names what is wrong with a bad file.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace em::io {

// 8-bit pixels, HWC interleaved: pixels[(y * width + x) * channels + c].
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;

  size_t size() const { return static_cast<size_t>(width) * height * channels; }
  uint8_t at(int y, int x, int c) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
  uint8_t& at(int y, int x, int c) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
};

// What a file's header says, without decoding the pixels.
struct ImageInfo {
  std::string format;  // "PNG", "JPEG", "BMP", "GIF", "TGA", "PNM"
  int width = 0;
  int height = 0;
  int channels = 0;    // as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
};

// Decoders accepted (docs/datasets.md): PNG, JPEG, BMP, GIF (first frame), TGA, binary PNM (P5/P6).
// Images above max_image_pixels() are refused from their header, before any pixel is decoded (a 20000x20000 PNG
// is ~400 KB on disk and 1.2 GB decoded). The default is PIL's DecompressionBombError threshold (2 x
// Image.MAX_IMAGE_PIXELS); every tool that decodes images sets it with --max_image_pixels.
constexpr int64_t kDefaultMaxImagePixels = 178956970;
int64_t max_image_pixels();
// Process-wide (decoding threads read it); pixels >= 1.
void set_max_image_pixels(int64_t pixels);

// The format named by the file's magic bytes ("PNG", ...), or "" when none matches.
std::string sniff_image_format(std::string_view bytes);

// Header only. Throws em::Error(what, "not an image (<reason>)") like decode_image.
ImageInfo image_info(std::string_view bytes, const std::string& what);

// Decodes to want_channels (1 gray, 3 RGB, 4 RGBA; gray and alpha are converted as stb does: RGB = gray, alpha
// dropped without blending). Errors are em::Error(what, reason), `what` a path or "request: instances[0]":
//   "x.png: not an image (zero bytes)" / "(unknown format)" / "(unknown format: text)" / "(truncated PNG)" /
//   "(corrupt JPEG: bad huffman code)" / "(too large: 20000x20000 pixels, limit 178956970 (--max_image_pixels))".
Image decode_image(std::string_view bytes, const std::string& what, int want_channels = 3);
// read_file + decode_image, errors name the path.
Image read_image(const std::string& path, int want_channels = 3);

// PNG bytes of an image with 1-4 channels (zlib level 8, as stb_image_write).
std::string encode_png(const Image& image);
// encode_png + write_file_atomic ("-" = stdout).
void write_png(const std::string& path, const Image& image);

}  // namespace em::io
