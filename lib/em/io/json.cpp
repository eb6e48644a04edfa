#include "em/io/json.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"

namespace em::io {

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string msg = e.what();
    auto pos = msg.find("parse error");
    fail("{}: invalid JSON: {}", what, pos == std::string::npos ? msg : msg.substr(pos));
  }
}

Json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

std::string dump_json(const Json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_json_file(const std::filesystem::path& path, const Json& value, int indent) {
  write_file_atomic(path, dump_json(value, indent) + "\n");
}

const Json& require_field(const Json& object, const std::string& key, const std::string& what) {
  if (!object.is_object()) fail("{}: expected a JSON object", what);
  auto it = object.find(key);
  if (it == object.end()) fail("{}: missing field \"{}\"", what, key);
  return *it;
}

}  // namespace em::io
