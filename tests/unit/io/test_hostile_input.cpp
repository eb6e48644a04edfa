// Hostile input refused at its root (docs/reliability.md): JSON nesting and duplicate keys, special and oversized
// files, paths that leave their folder, names that are not UTF-8, decompression bombs.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include <sys/stat.h>

#include <simdjson.h>

#include "em/core/error.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "em/io/json_dom.hpp"
#include "em/io/request.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {
std::string nested_arrays(int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); }
std::string nested_objects(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  return s + std::string(static_cast<size_t>(depth), '}');
}
void write(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }
}  // namespace

TEST_CASE("JSON nested deeper than kMaxJsonDepth is refused by every parser, never a stack overflow", "[io][json][hostile]") {
  using em::io::kMaxJsonDepth;
  CHECK_NOTHROW(em::io::parse_json(nested_arrays(kMaxJsonDepth), "ok.json"));
  CHECK_NOTHROW(em::io::parse_json(nested_objects(kMaxJsonDepth), "ok.json"));
  CHECK_THROWS_WITH(em::io::parse_json(nested_arrays(kMaxJsonDepth + 1), "deep.json"),
                    "deep.json: invalid JSON: nested more than 128 arrays/objects deep");
  // What crashed every tool: a million levels of objects (a stack overflow on the way out).
  CHECK_THROWS_AS(em::io::parse_json(nested_objects(1000000), "deep.json"), em::Error);
  CHECK_THROWS_AS(em::io::parse_json(nested_arrays(1000000), "deep.json"), em::Error);
  CHECK_FALSE(em::io::try_parse_json(nested_objects(200000)).has_value());

  // simdjson's documents: the same limit, named with the JSON path.
  simdjson::dom::parser parser;
  const std::string deep = "{\"instances\": " + nested_arrays(kMaxJsonDepth + 5) + "}";
  simdjson::dom::element root = parser.parse(deep);
  CHECK_THROWS_WITH(em::io::check_json_rules(root, "x.json"), Contains("nested more than 128") && Contains("$.instances[0]"));
  CHECK_THROWS_WITH(em::io::decode_request("{\"instances\": " + nested_arrays(kMaxJsonDepth + 5) + "}"),
                    Contains("request") && Contains("nested more than 128"));
}

TEST_CASE("a key given twice in one object is refused: readers disagree on which one counts", "[io][json][hostile]") {
  CHECK_THROWS_WITH(em::io::parse_json(R"({"seed": 1, "seed": 2})", "hp.json"),
                    Contains("hp.json: invalid JSON: key \"seed\" appears twice"));
  CHECK_THROWS_WITH(em::io::parse_json(R"([{"a": {"b": 1, "b": 1}}])", "x.json"), Contains("key \"b\" appears twice"));
  // The same key in different objects, and keys differing in case, are fine.
  const em::io::Json ok = em::io::parse_json(R"([{"a": 1}, {"a": 2, "A": 3}])", "x.json");
  CHECK(ok[1]["A"] == 3);
  CHECK_FALSE(em::io::try_parse_json(R"({"a": 1, "a": 1})").has_value());

  CHECK_THROWS_WITH(em::io::decode_request(R"({"instances": [{"data": "AAAA"}], "instances": []})"),
                    Contains("request") && Contains("key \"instances\" appears twice"));
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(std::string(R"({"images": [{"id": 1, "file_name": "a", "id": 2}]})"));
  CHECK_THROWS_WITH(em::io::check_json_rules(root, "coco.json"),
                    Contains("key \"id\" appears twice in the object at $.images[0]"));
}

TEST_CASE("an object of a million keys parses as nlohmann's parser reads it, in linear time", "[io][json][hostile]") {
  // nlohmann's own DOM parser inserts each key through ordered_json's linear search: 2^20 keys (an id2label that
  // config.json allows) took about 20 minutes; appending makes it a fraction of a second. Timing is not checked
  // (ctest's timeout is what would catch a return to O(n^2)); the document must be exactly nlohmann's.
  std::string text = "{";
  for (int i = 0; i < (1 << 20); ++i) text += (i ? ",\"" : "\"") + std::to_string(i) + "\":\"label " + std::to_string(i) + "\"";
  text += "}";
  const em::io::Json ours = em::io::parse_json(text, "config.json");
  REQUIRE(ours.size() == (1u << 20));
  CHECK(ours.begin().key() == "0");
  CHECK((--ours.end()).key() == std::to_string((1 << 20) - 1));
  CHECK(ours["777777"] == "label 777777");
  // Same members in the same order, every value type and nesting, as nlohmann's parser gives.
  const std::string mixed = R"({"z": [1, -2, 3.5, 1e300, true, null, "s", {"b": {}, "a": []}], "a": 18446744073709551615})";
  CHECK(em::io::parse_json(mixed, "x.json") == em::io::Json::parse(mixed));
  CHECK(em::io::parse_json(mixed, "x.json").dump() == em::io::Json::parse(mixed).dump());
  // Grammar errors keep nlohmann's messages (line, column) and their types for readers that report the offset.
  CHECK_THROWS_WITH(em::io::parse_json("{\"a\": [1,\n 2,]}", "x.json"),
                    Contains("x.json: invalid JSON: parse error at line 2, column 4"));
  CHECK_THROWS_AS(em::io::parse_json_or_throw("[1e400]", "x.json"), nlohmann::json::out_of_range);
  CHECK_THROWS_AS(em::io::parse_json_or_throw("[1,", "x.json"), nlohmann::json::parse_error);
}

TEST_CASE("read_file reads only regular files, checked before reading, and no more than its limit", "[io][file][hostile]") {
  em::test::TempDir tmp;
  // A FIFO would block forever; a link to /dev/zero named .png would never end.
  REQUIRE(::mkfifo((tmp / "fifo.png").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(em::io::read_file((tmp / "fifo.png").string()), Contains("is not a regular file (a FIFO)"));
  fs::create_symlink("/dev/zero", tmp / "zero.png");
  CHECK_THROWS_WITH(em::io::read_file((tmp / "zero.png").string()), Contains("is not a regular file (a device)"));
  CHECK_THROWS_WITH(em::io::read_file(tmp.path().string()), Contains("is a folder"));
  CHECK_THROWS_WITH(em::io::check_regular_file((tmp / "zero.png").string()), Contains("(a device)"));
  write(tmp / "ten.bin", std::string(10, 'x'));
  CHECK(em::io::read_file((tmp / "ten.bin").string(), 10) == std::string(10, 'x'));
  CHECK_THROWS_WITH(em::io::read_file((tmp / "ten.bin").string(), 9),
                    Contains("larger than the 9 bytes emkit reads from one file"));
  CHECK_THROWS_WITH(em::io::read_file((tmp / "missing").string()), Contains("cannot open"));
}

TEST_CASE("outside_reason refuses absolute paths, .. and links out of the folder", "[io][file][hostile]") {
  em::test::TempDir tmp;
  fs::create_directories(tmp / "data/train/cat");
  fs::create_directories(tmp / "elsewhere");
  write(tmp / "data/train/cat/a.png", "x");
  write(tmp / "elsewhere/secret.png", "x");
  const fs::path root = tmp / "data/train";
  CHECK(em::io::outside_reason(root, "cat/a.png").empty());
  CHECK(em::io::outside_reason(root, "cat/missing.png").empty());  // the reader says it is missing
  CHECK(em::io::outside_reason(root, "cat/../cat/a.png").empty());
  CHECK_THAT(em::io::outside_reason(root, "/etc/passwd"), Contains("is an absolute path"));
  CHECK_THAT(em::io::outside_reason(root, "../../elsewhere/secret.png"), Contains("leaves"));
  fs::create_symlink(tmp / "elsewhere/secret.png", tmp / "data/train/cat/link.png");
  CHECK_THAT(em::io::outside_reason(root, "cat/link.png"), Contains("is a link to") && Contains("secret.png"));
  fs::create_directory_symlink(tmp / "elsewhere", tmp / "data/train/dog");
  CHECK_THAT(em::io::outside_reason(root, "dog/secret.png"), Contains("is a link to"));
  // A link inside the folder, and a root that is itself a link, are fine.
  fs::create_symlink(tmp / "data/train/cat/a.png", tmp / "data/train/cat/same.png");
  CHECK(em::io::outside_reason(root, "cat/same.png").empty());
  fs::create_directory_symlink(tmp / "data", tmp / "linked");
  CHECK(em::io::outside_reason(tmp / "linked/train", "cat/a.png").empty());
}

TEST_CASE("is_valid_utf8 takes UTF-8 and nothing else", "[io][file][hostile]") {
  CHECK(em::io::is_valid_utf8("cat"));
  CHECK(em::io::is_valid_utf8("\xea\xb3\xa0\xec\x96\x91\xec\x9d\xb4"));  // 고양이
  CHECK(em::io::is_valid_utf8("\xf0\x9f\x90\x88"));                       // U+1F408
  CHECK_FALSE(em::io::is_valid_utf8("caf\xe9"));                          // Latin-1 é
  CHECK_FALSE(em::io::is_valid_utf8("\xc0\xaf"));                         // overlong '/'
  CHECK_FALSE(em::io::is_valid_utf8("\xed\xa0\x80"));                     // a surrogate
  CHECK_FALSE(em::io::is_valid_utf8("\xe4\xb8"));                         // cut short
  CHECK_FALSE(em::io::is_valid_utf8("\xf4\x90\x80\x80"));                 // past U+10FFFF
}

TEST_CASE("the max_image_pixels limit refuses an image from its header, before decoding", "[io][image][hostile]") {
  em::io::Image img;
  img.width = 20, img.height = 10, img.channels = 3;
  img.pixels.assign(img.size(), 7);
  const std::string png = em::io::encode_png(img);
  CHECK(em::io::max_image_pixels() == em::io::kDefaultMaxImagePixels);
  em::io::set_max_image_pixels(199);
  CHECK_THROWS_WITH(em::io::decode_image(png, "x.png"),
                    "x.png: not an image (too large: 20x10 pixels, limit 199 (--max_image_pixels))");
  em::io::set_max_image_pixels(200);
  CHECK(em::io::decode_image(png, "x.png").width == 20);
  CHECK_THROWS_AS(em::io::set_max_image_pixels(0), em::UsageError);
  em::io::set_max_image_pixels(em::io::kDefaultMaxImagePixels);
}
