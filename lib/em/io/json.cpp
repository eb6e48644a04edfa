#include "em/io/json.hpp"

#include "em/core/error.hpp"
#include "em/io/file.hpp"

#include <functional>
#include <memory>
#include <set>
#include <vector>

namespace em::io {

std::string parse_error_text(const nlohmann::json::exception& e) {
  const std::string msg = e.what();
  auto pos = msg.find("parse error");
  if (pos == std::string::npos && msg.rfind("[json.exception.", 0) == 0 && (pos = msg.find("] ")) != std::string::npos)
    pos += 2;  // "[json.exception.out_of_range.406] number overflow parsing '1e400'"
  return pos == std::string::npos ? msg : msg.substr(pos);
}

namespace {

// The two rules beyond the grammar (json.hpp), checked while nlohmann parses: before a too-deep container is built,
// and at each key against the keys of its object so far. Throws em::Error(what, reason).
class RuleChecker {
 public:
  explicit RuleChecker(std::string what) : what_(std::move(what)) {}
  bool operator()(int depth, nlohmann::json::parse_event_t event, Json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth + 1 > kMaxJsonDepth)
          fail_at(what_, "invalid JSON: nested more than {} arrays/objects deep", kMaxJsonDepth);
        keys_.emplace_back();
        is_object_.push_back(event == E::object_start);
        break;
      case E::object_end:
      case E::array_end:
        keys_.pop_back();
        is_object_.pop_back();
        break;
      case E::key:
        if (!is_object_.empty() && is_object_.back() && parsed.is_string() &&
            !keys_.back().insert(parsed.get_ref<const std::string&>()).second)
          fail_at(what_, "invalid JSON: key \"{}\" appears twice in one object (readers disagree on which counts)",
                  parsed.get_ref<const std::string&>());
        break;
      case E::value: break;
    }
    return true;
  }

 private:
  const std::string what_;
  std::vector<std::set<std::string>> keys_;
  std::vector<bool> is_object_;
};

}  // namespace

Json::parser_callback_t json_rules(const std::string& what) {
  auto rules = std::make_shared<RuleChecker>(what);
  return [rules](int depth, nlohmann::json::parse_event_t event, Json& parsed) { return (*rules)(depth, event, parsed); };
}

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text, json_rules(what));
  } catch (const nlohmann::json::parse_error& e) {
    fail_at(what, "invalid JSON: {}", parse_error_text(e));
  } catch (const nlohmann::json::out_of_range& e) {
    // A number past a double's range ("1e400") is nlohmann's out_of_range 406, not a parse_error (found by fuzz/).
    fail_at(what, "invalid JSON: {}", parse_error_text(e));
  }
}

std::optional<Json> try_parse_json(const std::string& text) {
  try {
    return parse_json(text, "");
  } catch (const Error&) {
    return std::nullopt;
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
