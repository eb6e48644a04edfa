// The inference request (docs/http-api.md): {"instances": [{"data": "<base64 of the image file's bytes>"}]}.
// Written by em-b64, read by em-predict and em-serve.
#pragma once
#include <string>
#include <vector>

namespace em::io {

// The request for these files' bytes, formatted as Python's json.dump(request, f, indent=4, sort_keys=True).
std::string encode_request(const std::vector<std::string>& file_bytes);

// Parses a request body and base64-decodes each instance's "data". Throws em::Error with the JSON path of the
// problem ("request: instances[2].data: invalid base64: ...") for malformed JSON, missing fields or bad base64.
std::vector<std::string> decode_request(const std::string& body);

}  // namespace em::io
