#include "em/data/coco_json.hpp"

#include <cmath>
#include <limits>

#include "em/io/file.hpp"

namespace em::data::coco_json {
namespace dom = simdjson::dom;

std::optional<double> as_number(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64: return static_cast<double>(int64_t(e));
    case dom::element_type::UINT64: return static_cast<double>(uint64_t(e));
    case dom::element_type::DOUBLE: return double(e);
    default: return std::nullopt;
  }
}

std::optional<std::int64_t> as_id(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64: return int64_t(e);
    case dom::element_type::UINT64: {
      uint64_t v = uint64_t(e);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    case dom::element_type::DOUBLE: {
      double v = double(e);
      if (std::floor(v) != v || std::fabs(v) > 9.0e15) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default: return std::nullopt;
  }
}

std::string element_text(dom::element e) {
  std::string s = simdjson::minify(e);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

simdjson::padded_string read_padded(const std::string& path) {
  if (path != "-") {
    io::check_regular_file(path);  // not a FIFO or device, not larger than emkit reads
    simdjson::padded_string text;
    if (!simdjson::padded_string::load(path).get(text)) return text;
  }
  return simdjson::padded_string(io::read_file(path));
}

}  // namespace em::data::coco_json
