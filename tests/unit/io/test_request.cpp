#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/request.hpp"

using em::io::parse_request;

namespace {
// One instance ("AAAA" decodes to three zero bytes) and the given "parameters" JSON.
std::string with_parameters(const std::string& parameters) {
  return R"({"instances": [{"data": "AAAA"}], "parameters": )" + parameters + "}";
}
}  // namespace

TEST_CASE("request parameters: top_k and threshold read, absent ones unset", "[io][request]") {
  auto none = parse_request(R"({"instances": [{"data": "AAAA"}]})");
  CHECK(none.images.size() == 1);
  CHECK(none.parameters.empty());
  CHECK(parse_request(with_parameters("{}")).parameters.empty());

  auto both = parse_request(with_parameters(R"({"top_k": 3, "threshold": 0.7})"));
  CHECK(both.parameters.top_k == 3);
  CHECK(both.parameters.threshold == 0.7);
  CHECK(parse_request(with_parameters(R"({"top_k": 0})")).parameters.top_k == 0);  // every label
  CHECK(parse_request(with_parameters(R"({"top_k": 2.0})")).parameters.top_k == 2);  // JSON's one number type
  CHECK(parse_request(with_parameters(R"({"threshold": 1})")).parameters.threshold == 1.0);
  CHECK(parse_request(with_parameters(R"({"threshold": 0})")).parameters.threshold == 0.0);
}

TEST_CASE("request parameters: every unknown, mistyped or out-of-range one is named in one error", "[io][request]") {
  CHECK_THROWS_WITH(parse_request(with_parameters(R"({"top_k": -1, "colour": "red", "threshold": 1.5})")),
                    Catch::Contains("parameters.top_k -1: must be in [0, 1000000]") &&
                        Catch::Contains("parameters.colour: unknown parameter (known: top_k, threshold)") &&
                        Catch::Contains("parameters.threshold 1.5: must be a score in [0, 1]"));
  CHECK_THROWS_WITH(parse_request(with_parameters(R"({"top_k": 2.5})")),
                    Catch::Contains("parameters.top_k: expected an integer, got a number"));
  CHECK_THROWS_WITH(parse_request(with_parameters(R"({"top_k": "3"})")),
                    Catch::Contains("parameters.top_k: expected an integer, got a string"));
  CHECK_THROWS_WITH(parse_request(with_parameters(R"({"threshold": null})")),
                    Catch::Contains("parameters.threshold: expected a number, got null"));
  CHECK_THROWS_WITH(parse_request(with_parameters("[1]")),
                    Catch::Contains("\"parameters\" must be an object") && Catch::Contains("not an array"));
  // The parameters are checked before any instance is decoded.
  CHECK_THROWS_WITH(parse_request(R"({"instances": [{"data": "@@"}], "parameters": {"k": 1}})"),
                    Catch::Contains("parameters.k: unknown"));
}
