// simdjson helpers of the COCO readers: annotation files (data/coco_file.cpp) and results files
// (metrics/coco_results.cpp) read numbers, ids and files the same way.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <simdjson.h>

namespace em::data::coco_json {

// A JSON number as a double; nullopt for anything else.
std::optional<double> as_number(simdjson::dom::element e);
// COCO ids are integers; 3.0 is read as 3 (Python's dict treats them as one key, as pycocotools does). nullopt for a
// non-integer, a non-number or an unsigned value past int64.
std::optional<std::int64_t> as_id(simdjson::dom::element e);
// The element as minified JSON, cut at 60 characters, for "got ..." in messages.
std::string element_text(simdjson::dom::element e);
// The file straight into simdjson's padded buffer (no copy); "-" (stdin) and unreadable paths go through
// io::read_file, which reads stdin and words the error the way every tool does.
simdjson::padded_string read_padded(const std::string& path);

}  // namespace em::data::coco_json
