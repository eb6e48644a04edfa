// The inference request (docs/http-api.md): {"instances": [{"data": "<base64 of the image file's bytes>"}],
// "parameters": {...}} (parameters optional). Written by em-b64, read by em-predict and em-serve.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace em::io {

// The request for these files' bytes, formatted as Python's json.dump(request, f, indent=4, sort_keys=True).
std::string encode_request(const std::vector<std::string>& file_bytes);

// Per-request options, applied after the forward pass (so requests with different ones still share a batch).
// Unset: the server's or em-predict's flag (--top_k, --threshold) applies.
struct RequestParameters {
  std::optional<int64_t> top_k;    // classification: labels per image, 0 = all (HF pipeline's top_k)
  std::optional<double> threshold; // detection: score threshold in [0, 1]
  bool empty() const { return !top_k && !threshold; }
};
// The names of RequestParameters' fields, for messages: "top_k, threshold".
const char* request_parameter_names();

struct Request {
  std::vector<std::string> images;  // each instance's decoded "data" bytes
  RequestParameters parameters;
};

// Parses a request body and base64-decodes each instance's "data". Throws em::Error with the JSON path of the
// problem ("request: instances[2].data: invalid base64: ...") for malformed JSON, missing fields or bad base64, and
// for parameters that are unknown, of the wrong type or out of range (every one named in one message).
Request parse_request(const std::string& body);
// parse_request's images alone.
std::vector<std::string> decode_request(const std::string& body);

}  // namespace em::io
