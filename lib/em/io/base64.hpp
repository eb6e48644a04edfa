// Standard base64 (RFC 4648, '+/' alphabet, '=' padding), as Python's base64.b64encode/b64decode.
#pragma once
#include <string>
#include <string_view>

namespace em::io {

std::string base64_encode(std::string_view bytes);
// Strict decode: ignores ASCII whitespace (line breaks in pasted data), rejects any other non-alphabet character
// and bad padding. Throws em::Error("<what>: invalid base64: ...") naming the offset.
std::string base64_decode(std::string_view text, const std::string& what = "data");

}  // namespace em::io
