#include "em/io/request.hpp"

#include "em/core/error.hpp"
#include "em/io/base64.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"

#include <simdjson.h>

#include "em/io/json_dom.hpp"

namespace em::io {

std::string encode_request(const std::vector<std::string>& file_bytes) {
  Json instances = Json::array();
  for (const auto& bytes : file_bytes) instances.push_back({{"data", base64_encode(bytes)}});
  // One key per object, so the insertion order equals Python's sort_keys order.
  return dump_json(Json{{"instances", instances}}, 4);
}

std::vector<std::string> decode_request(const std::string& body) {
  // simdjson's DOM parser (runtime-dispatched SIMD): request bodies are megabytes of base64 on every request's path.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(body).get(root)) {
    // The commonest mistake: posting the image itself. Say what the body must be.
    const std::string format = sniff_image_format(body);
    if (!format.empty())
      fail("request: the body is a {} image, not the request JSON; send {{\"instances\": [{{\"data\": BASE64}}]}} "
           "(em-b64 IMAGE writes it)",
           format);
    fail("request: invalid JSON ({}); the body must be the request JSON {{\"instances\": [{{\"data\": BASE64}}]}}, "
         "as em-b64 IMAGE writes it",
         simdjson::error_message(err));
  }
  check_json_rules(root, "request");
  if (!root.is_object()) fail("request: expected a JSON object {{\"instances\": [...]}}");
  simdjson::dom::element field;
  if (root.get_object().at_key("instances").get(field)) fail("request: missing field \"instances\"");
  if (!field.is_array()) fail("request: \"instances\" must be an array");
  std::vector<std::string> out;
  size_t index = 0;
  for (simdjson::dom::element item : field.get_array()) {
    std::string where = fmt::format("request: instances[{}]", index++);
    if (!item.is_object()) fail("{}: expected an object {{\"data\": BASE64}}", where);
    simdjson::dom::element data;
    if (item.get_object().at_key("data").get(data)) fail("{}: missing field \"data\"", where);
    std::string_view text;
    if (data.get_string().get(text)) fail("{}.data: expected a base64 string", where);
    out.push_back(base64_decode(text, where + ".data"));
  }
  if (out.empty()) fail("request: \"instances\" is empty");
  return out;
}

}  // namespace em::io
