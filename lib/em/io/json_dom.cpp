#include "em/io/json_dom.hpp"

#include <set>
#include <string_view>

#include "em/core/error.hpp"
#include "em/io/json.hpp"

namespace em::io {
namespace {

void check(simdjson::dom::element e, int depth, std::string& path, const std::string& what) {
  const auto type = e.type();
  if (type != simdjson::dom::element_type::ARRAY && type != simdjson::dom::element_type::OBJECT) return;
  if (depth + 1 > kMaxJsonDepth)
    fail_at(what, "invalid JSON: nested more than {} arrays/objects deep (at {})", kMaxJsonDepth, path);
  const size_t length = path.size();
  if (type == simdjson::dom::element_type::ARRAY) {
    simdjson::dom::array array;
    if (e.get_array().get(array)) return;
    size_t i = 0;
    for (simdjson::dom::element item : array) {
      path += "[" + std::to_string(i++) + "]";
      check(item, depth + 1, path, what);
      path.resize(length);
    }
    return;
  }
  simdjson::dom::object object;
  if (e.get_object().get(object)) return;
  std::set<std::string_view> keys;
  for (simdjson::dom::key_value_pair field : object) {
    if (!keys.insert(field.key).second)
      fail_at(what, "invalid JSON: key \"{}\" appears twice in the object at {} (readers disagree on which counts)",
              field.key, path);
    path += ".";
    path += field.key;
    check(field.value, depth + 1, path, what);
    path.resize(length);
  }
}

}  // namespace

void check_json_rules(simdjson::dom::element root, const std::string& what) {
  std::string path = "$";
  check(root, 0, path, what);
}

}  // namespace em::io
