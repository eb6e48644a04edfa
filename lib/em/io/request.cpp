#include "em/io/request.hpp"

#include "em/core/error.hpp"
#include "em/io/base64.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"

#include <simdjson.h>

#include <cmath>

#include "em/io/json_dom.hpp"

namespace em::io {

std::string encode_request(const std::vector<std::string>& file_bytes) {
  Json instances = Json::array();
  for (const auto& bytes : file_bytes) instances.push_back({{"data", base64_encode(bytes)}});
  // One key per object, so the insertion order equals Python's sort_keys order.
  return dump_json(Json{{"instances", instances}}, 4);
}

const char* request_parameter_names() { return "top_k, threshold"; }

namespace {

// "parameters": every problem of the object, named by its path, in one message.
RequestParameters parse_parameters(simdjson::dom::element field) {
  if (!field.is_object())
    fail("request: \"parameters\" must be an object such as {{\"top_k\": 3}} or {{\"threshold\": 0.7}}, not {}",
         json_type_name(field.type()));
  RequestParameters out;
  std::vector<std::string> problems;
  for (auto [key, value] : field.get_object()) {
    const std::string where = fmt::format("parameters.{}", key);
    if (key == "top_k") {
      int64_t k = 0;
      // JSON has one number type: 3.0 is 3, as Python's json would give an int-valued float to a pipeline.
      double d = 0;
      if (value.is_int64()) {
        k = value.get_int64().value();
      } else if (value.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) && d == std::floor(d) &&
                 std::fabs(d) < 1e15) {
        k = static_cast<int64_t>(d);
      } else {
        problems.push_back(fmt::format("{}: expected an integer, got {}", where, json_type_name(value.type())));
        continue;
      }
      if (k < 0 || k > 1000000)
        problems.push_back(fmt::format("{} {}: must be in [0, 1000000] (0 = every label)", where, k));
      else
        out.top_k = k;
    } else if (key == "threshold") {
      double t = 0;
      if (value.get_double().get(t) != simdjson::SUCCESS) {
        problems.push_back(fmt::format("{}: expected a number, got {}", where, json_type_name(value.type())));
        continue;
      }
      if (!(t >= 0 && t <= 1))
        problems.push_back(fmt::format("{} {}: must be a score in [0, 1]", where, t));
      else
        out.threshold = t;
    } else {
      problems.push_back(fmt::format("{}: unknown parameter (known: {})", where, request_parameter_names()));
    }
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    fail("request: {}", all);
  }
  return out;
}

}  // namespace

std::vector<std::string> decode_request(const std::string& body) { return parse_request(body).images; }

Request parse_request(const std::string& body) {
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
  Request request;
  simdjson::dom::element parameters;
  if (root.get_object().at_key("parameters").get(parameters) == simdjson::SUCCESS)
    request.parameters = parse_parameters(parameters);
  std::vector<std::string>& out = request.images;
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
  return request;
}

}  // namespace em::io
