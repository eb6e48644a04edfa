// JSON documents: nlohmann::ordered_json for what we build and write (keys keep their order, NaN prints as null),
// parsing with errors that name the file and position. Hot-path parsing (requests, safetensors headers) uses simdjson.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace em::io {

using Json = nlohmann::ordered_json;

// Every JSON document emkit reads, whichever parser reads it, follows two rules beyond the grammar:
//  - nesting at most kMaxJsonDepth arrays/objects deep: code that walks a document recursively (printing, copying,
//    our readers) would overflow the stack on a million '[' in a 2 MB file; no file emkit reads needs more than ~6;
//  - no key twice in one object: readers disagree about which one counts (Python's json and nlohmann keep the
//    last, simdjson's lookups the first), so a file that means two things is refused rather than read one way.
constexpr int kMaxJsonDepth = 128;

// Parses text under the two rules (a broken rule throws em::Error(what, reason)) in time linear in its size, and
// throws nlohmann's parse_error / out_of_range for a grammar error, for a reader that reports those itself (with
// their byte offset).
Json parse_json_or_throw(const std::string& text, const std::string& what);

// Appends "key": value to an object without looking for the key, which the caller guarantees is new: O(1), where
// object[key] searches the members (ordered_json keeps them in a vector), so that building an object of n keys
// costs O(n^2) (2^20 labels: minutes).
void append_new_member(Json& object, std::string key, Json value);

// Parses text; `what` (a path or "request") prefixes the error message. Throws em::Error(what, reason).
Json parse_json(const std::string& text, const std::string& what);
// parse_json without the message: nullopt where it would throw (for lines that may be cut short, e.g. after a crash).
std::optional<Json> try_parse_json(const std::string& text);
Json read_json_file(const std::string& path);
// nlohmann's parse error without its "[json.exception.parse_error.101] " tag: "parse error at line 4, column 2: ...";
// the same for the out_of_range error a too large number gives: "number overflow parsing '1e400'".
std::string parse_error_text(const nlohmann::json::exception& e);
// Compact (indent < 0) or pretty; non-finite numbers become null.
std::string dump_json(const Json& value, int indent = -1);
// Writes pretty JSON + newline atomically.
void write_json_file(const std::filesystem::path& path, const Json& value, int indent = 2);

// Typed field access with messages like "config.json: field \"depths\": expected an array of integers".
const Json& require_field(const Json& object, const std::string& key, const std::string& what);

}  // namespace em::io
