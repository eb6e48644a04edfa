// Small helpers for simdjson's DOM, shared by the readers that report errors with JSON paths (COCO files).
#pragma once
#include <string>

#include <simdjson.h>

namespace em::io {

// The JSON type as an error message says it: "an array", "a number", "null", ...
inline const char* json_type_name(simdjson::dom::element_type t) {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

// json.hpp's two rules (nesting at most kMaxJsonDepth deep, no key twice in one object) for a document simdjson
// parsed: em::Error(what, reason naming the JSON path, e.g. $.annotations[3].bbox) when one is broken.
void check_json_rules(simdjson::dom::element root, const std::string& what);

}  // namespace em::io
