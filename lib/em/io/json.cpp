#include "em/io/json.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"

namespace em::io {

std::string parse_error_text(const nlohmann::json::exception& e) {
  const std::string msg = e.what();
  auto pos = msg.find("parse error");
  if (pos == std::string::npos && msg.rfind("[json.exception.", 0) == 0 && (pos = msg.find("] ")) != std::string::npos)
    pos += 2;  // "[json.exception.out_of_range.406] number overflow parsing '1e400'"
  return pos == std::string::npos ? msg : msg.substr(pos);
}

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail_at(what, "invalid JSON: {}", parse_error_text(e));
  } catch (const nlohmann::json::out_of_range& e) {
    // A number past a double's range ("1e400") is nlohmann's out_of_range 406, not a parse_error (found by fuzz/).
    fail_at(what, "invalid JSON: {}", parse_error_text(e));
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
  if (!object.is_object()) fail_at(what, "expected a JSON object");
  auto it = object.find(key);
  if (it == object.end()) fail_at(what, "missing field \"{}\"", key);
  return *it;
}

}  // namespace em::io
