// em-validate's report: every problem in a dataset folder (path + reason) and a summary of what it holds.
// One report type for all algorithms; each layout adds a validate_<algo>() that decodes every file.
#pragma once
#include <string>
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
  std::vector<Problem> warnings;  // worth knowing, not fatal (ignored files, seed misspellings)
  io::Json summary = io::Json::object();

  bool ok() const { return problems.empty(); }
  // {"algo", "dir", "valid", "problems": [{"path","reason"}], "warnings": [...], "summary": {...}}
  io::Json to_json() const;
  // Lines for people: header, one "  PATH: REASON" line per problem and warning, the summary, the verdict.
  std::string to_text() const;
};

// The start of every validator's report: ALGO and DIR set and, when DIR is not a folder, the problem "no such dataset
// folder (expected EXPECTED_LAYOUT)" already in it (the validator then returns it as it is).
ValidationReport begin_report(const std::string& algo, const std::string& dir, const std::string& expected_layout);

// The validator of `algo`'s layout (SPEC §2).
ValidationReport validate_dataset(Algo algo, const std::string& dir, int threads = 0);

// Decodes every image of DIR/{train,validation,test} on `threads` threads (0 = all cores) and reports every
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
};
// Reads and fully decodes every path on `threads` threads (0 = all cores), results in input order; shows
// progress on stderr for large sets. For every algorithm's validator.
std::vector<DecodedInfo> decode_all(const std::vector<std::string>& paths, int threads = 0);

}  // namespace em::data
