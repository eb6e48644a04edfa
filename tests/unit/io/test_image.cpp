// Image decoding/encoding: every dataset format (docs/datasets.md) decodes to Pillow's pixels; bad files are refused
// with a reason, kept apart from the path.
#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "test_support.hpp"

#include <atomic>
#include <filesystem>
#include <thread>

using em::io::Image;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(EM_SOURCE_DIR) / "tests/golden/image";

uint32_t crc32(const std::vector<uint8_t>& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string decode_error(const std::string& bytes, const std::string& what = "x.png") {
  try {
    em::io::decode_image(bytes, what);
  } catch (const em::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every dataset format decodes to the RGB pixels Pillow decodes", "[io][image]") {
  em::io::Json golden = em::io::read_json_file((kGolden / "golden.json").string());
  int checked = 0;
  for (const auto& c : golden["decode"]) {
    fs::path path;
    if (c.contains("shared")) {
      auto p = em::test::shared_path(c["shared"].get<std::string>());
      if (!p) continue;
      path = *p;
    } else {
      path = kGolden / c["file"].get<std::string>();
    }
    INFO(path.string());
    Image image = em::io::read_image(path.string());
    CHECK(image.width == c["width"].get<int>());
    CHECK(image.height == c["height"].get<int>());
    CHECK(image.channels == 3);
    if (c["lossless"].get<bool>()) {
      CHECK(crc32(image.pixels) == c["rgb_crc32"].get<uint32_t>());
    } else {
      // JPEG: decoders may round the IDCT differently; stay within a few levels of the PNG it was made from.
      Image reference = em::io::read_image((kGolden / "rgb_37x23.png").string());
      double sum = 0;
      for (size_t i = 0; i < image.pixels.size(); ++i) sum += std::abs(int(image.pixels[i]) - reference.pixels[i]);
      CHECK(sum / image.pixels.size() < 4.0);
    }
    ++checked;
  }
  CHECK(checked >= 8);
}

TEST_CASE("a grayscale image is read as RGB with equal channels, or as one channel on request", "[io][image]") {
  auto camera = em::test::find_shared("data/images/camera.png");
  fs::path path = camera ? *camera : kGolden / "gray_29x31.png";
  em::io::ImageInfo info = em::io::image_info(em::io::read_file(path.string()), path.string());
  CHECK(info.channels == 1);
  CHECK(info.format == "PNG");
  Image rgb = em::io::read_image(path.string());
  REQUIRE(rgb.channels == 3);
  for (int y = 0; y < rgb.height; y += 17)
    for (int x = 0; x < rgb.width; x += 13) {
      CHECK(rgb.at(y, x, 0) == rgb.at(y, x, 1));
      CHECK(rgb.at(y, x, 1) == rgb.at(y, x, 2));
    }
  Image gray = em::io::read_image(path.string(), 1);
  CHECK(gray.channels == 1);
  CHECK(gray.at(5, 7, 0) == rgb.at(5, 7, 0));
}

TEST_CASE("empty, text, unknown and truncated files are refused with a reason naming the file", "[io][image]") {
  std::string png = em::io::read_file((kGolden / "rgb_37x23.png").string());
  std::string jpeg = em::io::read_file((kGolden / "rgb_37x23.jpg").string());
  std::string bmp = em::io::read_file((kGolden / "rgb_37x23.bmp").string());
  std::string gif = em::io::read_file((kGolden / "rgb_37x23.gif").string());
  std::string ppm = em::io::read_file((kGolden / "rgb_37x23.ppm").string());
  std::string tga = em::io::read_file((kGolden / "rgb_37x23.tga").string());

  CHECK(decode_error("") == "x.png: not an image (zero bytes)");
  CHECK(decode_error("hello, I am a text file\n") == "x.png: not an image (unknown format: text)");
  CHECK(decode_error(std::string("\x00\x01\x02\xff\xfe\x00\x00\x07", 8)) == "x.png: not an image (unknown format)");
  for (double fraction : {0.5, 0.9, 0.99}) {
    INFO("kept " << fraction);
    CHECK(decode_error(png.substr(0, png.size() * fraction)) == "x.png: not an image (truncated PNG)");
    CHECK(decode_error(jpeg.substr(0, jpeg.size() * fraction), "a.jpg") == "a.jpg: not an image (truncated JPEG)");
    CHECK(decode_error(bmp.substr(0, bmp.size() * fraction), "a.bmp") == "a.bmp: not an image (truncated BMP)");
    CHECK(decode_error(gif.substr(0, gif.size() * fraction), "a.gif") == "a.gif: not an image (truncated GIF)");
    CHECK(decode_error(ppm.substr(0, ppm.size() * fraction), "a.ppm") == "a.ppm: not an image (truncated PNM)");
    // (PIL's TGA ends with a 26-byte TGA 2.0 footer: the last 1% is not pixel data.)
    if (fraction < 0.95)
      CHECK(decode_error(tga.substr(0, tga.size() * fraction), "a.tga") == "a.tga: not an image (truncated TGA)");
  }
  // Only the 8-byte signature, and a damaged signature.
  CHECK(decode_error(png.substr(0, 8)) == "x.png: not an image (truncated PNG)");
  std::string bad_sig = png;
  bad_sig[1] = 'X';
  CHECK(decode_error(bad_sig) == "x.png: not an image (unknown format)");
  // Corrupt data inside a complete file is "corrupt", with stb's reason.
  std::string corrupt = png;
  for (size_t i = 60; i < corrupt.size() - 20; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  CHECK_THAT(decode_error(corrupt), Catch::StartsWith("x.png: not an image (corrupt PNG") ||
                                        Catch::Equals("x.png: not an image (truncated PNG)"));
}

TEST_CASE("read and decode errors carry the path apart from the reason, what() stays \"PATH: REASON\"", "[io][image]") {
  em::test::TempDir tmp;
  auto error_of = [](auto&& f) -> em::Error {
    try {
      f();
    } catch (const em::Error& e) {
      return e;
    }
    FAIL("no em::Error thrown");
    return em::Error("");
  };
  const std::string missing = (tmp / "missing.png").string();
  em::Error e = error_of([&] { em::io::read_file(missing); });
  CHECK(e.path() == missing);
  CHECK(e.reason() == "cannot open (No such file or directory)");
  CHECK(std::string(e.what()) == missing + ": cannot open (No such file or directory)");

  e = error_of([&] { em::io::read_file(tmp.path().string()); });
  CHECK(e.path() == tmp.path().string());
  CHECK(e.reason() == "is a folder, expected a file");

  e = error_of([] { em::io::decode_image("", "x.png"); });
  CHECK(e.path() == "x.png");
  CHECK(e.reason() == "not an image (zero bytes)");
  e = error_of([] { em::io::image_info("hello, I am a text file\n", "y.png"); });
  CHECK(e.path() == "y.png");
  CHECK(e.reason() == "not an image (unknown format: text)");

  e = error_of([] { em::io::parse_json("[1,", "z.json"); });
  CHECK(e.path() == "z.json");
  CHECK_THAT(e.reason(), Catch::StartsWith("invalid JSON: parse error at line 1"));
  CHECK(std::string(e.what()) == "z.json: " + e.reason());
}

TEST_CASE("a header announcing more pixels than the limit is refused before decoding", "[io][image]") {
  // A PNG signature and IHDR for 20000x20000 RGB: stb reads the size from the header alone.
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0dIHDR", 8);
  png += std::string("\x00\x00\x4e\x20\x00\x00\x4e\x20\x08\x02\x00\x00\x00", 13);
  png += std::string("\x00\x00\x00\x00", 4);  // CRC, not checked by stb
  png += std::string(64, '\0');
  CHECK(decode_error(png) == "x.png: not an image (too large: 20000x20000 pixels, limit 178956970 (--max_image_pixels))");
}

TEST_CASE("PNG encoding round-trips 1 to 4 channels and writes atomically", "[io][image]") {
  em::test::TempDir tmp;
  for (int channels = 1; channels <= 4; ++channels) {
    Image image{7, 5, channels, {}};
    image.pixels.resize(image.size());
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37 + channels);
    std::string path = (tmp / ("x" + std::to_string(channels) + ".png")).string();
    em::io::write_png(path, image);
    Image back = em::io::read_image(path, channels);
    CHECK(back.width == 7);
    CHECK(back.height == 5);
    CHECK(back.pixels == image.pixels);
    CHECK(em::io::sniff_image_format(em::io::read_file(path)) == "PNG");
  }
  CHECK_THROWS_AS(em::io::encode_png(Image{3, 3, 3, {1, 2, 3}}), em::Error);
}

TEST_CASE("decoding on many threads at once gives each call its own result and failure reason", "[io][image]") {
  // stb keeps its failure reason in a global unless built thread-local; a shared one would mix reasons up.
  std::string png = em::io::read_file((kGolden / "rgb_37x23.png").string());
  std::string jpeg = em::io::read_file((kGolden / "rgb_37x23.jpg").string());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {png, ""},
      {png.substr(0, png.size() / 2), "f: not an image (truncated PNG)"},
      {jpeg, ""},
      {jpeg.substr(0, jpeg.size() / 2), "f: not an image (truncated JPEG)"},
  };
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto& [bytes, expected] = cases[(t + i) % cases.size()];
        std::string got;
        try {
          Image image = em::io::decode_image(bytes, "f");
          if (image.width != 37) got = "wrong size";
        } catch (const em::Error& e) {
          got = e.what();
        }
        if (got != expected) ++mismatches;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(mismatches == 0);
}
