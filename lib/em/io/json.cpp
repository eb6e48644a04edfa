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

// The document builder behind every nlohmann parse of ours (a SAX handler): it checks the two rules beyond the
// grammar (json.hpp) as it goes — depth before a container is built, each key against its object's keys so far —
// and appends members without searching. nlohmann's own DOM parser inserts each key through ordered_map's linear
// find, so an object of n keys costs O(n^2): an id2label of 20,000 labels took 0.5 s and one of 2^20 would take
// about 20 minutes (found by fuzz/fuzz_model_config). Keys are unique here (the rule), so appending is exact.
class DomBuilder : public nlohmann::json_sax<Json> {
 public:
  explicit DomBuilder(const std::string& what) : what_(what) {}
  Json take() { return std::move(root_); }

  bool null() override { return add(nullptr); }
  bool boolean(bool v) override { return add(v); }
  bool number_integer(number_integer_t v) override { return add(v); }
  bool number_unsigned(number_unsigned_t v) override { return add(v); }
  bool number_float(number_float_t v, const string_t&) override { return add(v); }
  bool string(string_t& v) override { return add(std::move(v)); }
  bool binary(binary_t& v) override { return add(Json(std::move(v))); }
  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (!keys_.back().insert(k).second)
      fail_at(what_, "invalid JSON: key \"{}\" appears twice in one object (readers disagree on which counts)", k);
    key_ = std::move(k);
    return true;
  }
  // Rethrown as the type nlohmann's parse() throws (as its own DOM parser does), for the callers that read the
  // error's byte offset; parse_json turns it into em::Error.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    switch ((e.id / 100) % 100) {
      case 1: throw *static_cast<const nlohmann::json::parse_error*>(&e);
      case 4: throw *static_cast<const nlohmann::json::out_of_range*>(&e);
      default: fail_at(what_, "invalid JSON: {}", parse_error_text(e));
    }
  }

 private:
  // Where the next value goes: the root, the end of the open array, or the open object under the last key.
  Json* place(Json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      auto& items = parent.get_ref<Json::array_t&>();
      items.push_back(std::move(value));
      return &items.back();
    }
    append_new_member(parent, std::move(key_), std::move(value));  // the key is new (checked in key())
    return &parent.get_ref<Json::object_t&>().back().second;
  }
  bool add(Json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(Json&& container) {
    if (static_cast<int>(stack_.size()) + 1 > kMaxJsonDepth)
      fail_at(what_, "invalid JSON: nested more than {} arrays/objects deep", kMaxJsonDepth);
    const bool object = container.is_object();
    // The pointer stays valid: the parent grows again only after this container is closed.
    stack_.push_back(place(std::move(container)));
    keys_.emplace_back();
    return true;
  }
  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  const std::string& what_;
  Json root_;
  std::vector<Json*> stack_;
  std::vector<std::set<std::string>> keys_;
  std::string key_;
};

}  // namespace

void append_new_member(Json& object, std::string key, Json value) {
  object.get_ref<Json::object_t&>().Container::emplace_back(std::move(key), std::move(value));
}

Json parse_json_or_throw(const std::string& text, const std::string& what) {
  DomBuilder builder(what);
  Json::sax_parse(text, &builder);
  return builder.take();
}

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return parse_json_or_throw(text, what);
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
