// em-validate's report: every problem in a dataset folder (path + reason) and a summary of what it holds.
// One report type for all algorithms; each layout adds a validate_<algo>() that decodes every file.
#pragma once
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "em/core/algo.hpp"
#include "em/io/json.hpp"

namespace em::data {

struct Problem {
  std::string path;    // the file or folder concerned
  std::string reason;  // "not an image (truncated PNG)", "empty label folder", ...
};

struct ValidationReport {
  std::string algo;  // "classification"
  std::string dir;
  std::vector<Problem> problems;  // make the dataset invalid (exit 1)
  std::vector<Problem> warnings;  // worth knowing, not fatal (ignored files, accepted misspelt names)
  io::Json summary = io::Json::object();

  bool ok() const { return problems.empty(); }
  // {"algo", "dir", "valid", "problems": [{"path","reason"}], "warnings": [...], "summary": {...}}
  io::Json to_json() const;
  // Lines for people: header, one "  PATH: REASON" line per problem and warning, the summary (report_text.cpp: a
  // table with a column per split, numbers to 4 significant digits), the verdict.
  std::string to_text() const;
};

// The start of every validator's report: ALGO and DIR set and, when DIR is not a folder, the problem "no such dataset
// folder (expected LAYOUT)" already in it (the validator then returns it as it is).
ValidationReport begin_report(Algo algo, const std::string& dir);  // the layout line from core/algo's row

// The validator of `algo`'s layout (the layouts are in docs/datasets.md).
ValidationReport validate_dataset(Algo algo, const std::string& dir, int threads = 0);

// Decodes every image of DIR/{train,validation,test} on `threads` threads (0 = every usable CPU) and reports every
// problem: missing dataset folder or split, a split without images, an empty label folder, a validation/test label
// unknown to train, an image outside a label folder, and each file that does not decode (zero bytes, unknown
// format, text, truncated, corrupt). Summary: labels, images per split and label, image sizes, channels, formats.
ValidationReport validate_classification(const std::string& dir, int threads = 0);

// What decoding one file found: its header (zeros when unreadable) and "" or the reason it does not decode
// ("not an image (truncated PNG)", "cannot open (Permission denied)"), without the path prefix.
struct DecodedInfo {
  int width = 0, height = 0, channels = 0;
  std::string format;
  std::string error;
  uint64_t bytes = 0;         // the file's size (0 when it could not be read)
  uint64_t content_hash = 0;  // fnv1a_64 of its bytes: identical files have identical (bytes, content_hash)
};
// Reads and fully decodes one file: the pixels too, not just the header, which catches truncation. A file that
// does not decode gives its reason in `error`; nothing is thrown.
DecodedInfo decode_file(const std::string& path);
// decode_file() of every path on `threads` threads (0 = every usable CPU), results in input order; a progress line
// on stderr for 1000 images or more. For every algorithm's validator.
std::vector<DecodedInfo> decode_all(const std::vector<std::string>& paths, int threads = 0);

// The reason to report for a problem with `path`: the reason alone when `error` is an em::Error about that very
// path (em::fail_at), else the whole message.
std::string reason_about(const std::exception& error, const std::string& path);

// The image sizes a validator decoded, for its summary's "image_size".
class ImageSizeCounts {
 public:
  void add(int width, int height) { ++counts_[{width, height}]; }
  bool empty() const { return counts_.empty(); }
  // {"width": {"min", "max"}, "height": {"min", "max"}, "most_common": {"width", "height", "images"},
  //  "distinct_sizes"}; most_common is the smallest of the most frequent sizes.
  io::Json to_json() const;

 private:
  std::map<std::pair<int, int>, int64_t> counts_;
};

}  // namespace em::data
