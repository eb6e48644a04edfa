#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/image.hpp"
#include "em/io/request.hpp"
#include "em/serve/service.hpp"

using em::infer::Prepared;
using em::io::Json;
using em::serve::BatcherOptions;

namespace {
// A whole predictor stand-in: the "score" is the image's mean pixel, so answers depend on the request's bytes.
class MeanPredictor : public em::infer::Predictor {
 public:
  em::Algo algo() const override { return em::Algo::classification; }
  Prepared prepare(const em::io::Image& image) const override {
    double sum = 0;
    for (uint8_t v : image.pixels) sum += v;
    return {torch::full({1}, static_cast<float>(sum / static_cast<double>(image.pixels.size()))), image.width,
            image.height};
  }
  std::vector<Json> predict(const std::vector<Prepared>& batch) const override {
    std::vector<Json> out;
    for (const auto& p : batch)
      out.push_back(Json::array({Json{{"score", p.pixel_values.item<float>()}, {"label", "mean"}}}));
    return out;
  }
};

std::string png_of(int width, int height, uint8_t value) {
  em::io::Image image{width, height, 3, std::vector<uint8_t>(static_cast<size_t>(width * height * 3), value)};
  return em::io::encode_png(image);
}
}  // namespace

TEST_CASE("the inference service answers em-predict's bytes and 400 with the JSON path for bad requests", "[serve]") {
  em::serve::InferenceService service(std::make_unique<MeanPredictor>(), "model-dir", BatcherOptions{16, 1});
  MeanPredictor reference;
  const std::vector<std::string> images = {png_of(5, 4, 10), png_of(3, 3, 200)};
  const std::string request = em::io::encode_request(images);
  auto reply = service.infer(request);
  CHECK(reply.status == 200);
  CHECK(reply.body == em::infer::format_response(em::infer::make_response(reference.predict_bytes(images))));

  auto error_of = [&](const std::string& body) {
    auto r = service.infer(body);
    INFO(r.body);
    CHECK(r.status == 400);
    return em::io::parse_json(r.body, "reply").at("error").get<std::string>();
  };
  CHECK_THAT(error_of("{\"instances\": [{"), Catch::Contains("invalid JSON"));
  CHECK_THAT(error_of("{\"images\": []}"), Catch::Contains("missing field \"instances\""));
  CHECK_THAT(error_of("{\"instances\": [{\"data\": \"@@@\"}]}"), Catch::Contains("instances[0].data"));
  CHECK_THAT(error_of(em::io::encode_request({images[0], "not an image"})),
             Catch::Contains("request: instances[1]: not an image"));

  auto health = em::io::parse_json(service.health().body, "health");
  CHECK(health["status"] == "ok");
  CHECK(health["algo"] == "classification");
  CHECK(health["model"] == "model-dir");
  CHECK(health["stats"]["images"] == 2);
}

TEST_CASE("the inference service answers 503 once stopped and 500 when the model fails", "[serve]") {
  class FailingPredictor : public em::infer::Predictor {
   public:
    em::Algo algo() const override { return em::Algo::classification; }
    Prepared prepare(const em::io::Image& image) const override {
      return {torch::zeros({1}), image.width, image.height};
    }
    std::vector<Json> predict(const std::vector<Prepared>&) const override { em::fail("out of memory"); }
  };
  const std::string request = em::io::encode_request({png_of(2, 2, 1)});
  em::serve::InferenceService failing(std::make_unique<FailingPredictor>(), "model-dir", BatcherOptions{16, 1});
  auto failed = failing.infer(request);
  CHECK(failed.status == 500);
  CHECK_THAT(failed.body, Catch::Contains("prediction failed") && Catch::Contains("out of memory"));

  em::serve::InferenceService service(std::make_unique<MeanPredictor>(), "model-dir", BatcherOptions{16, 1});
  service.stop();
  CHECK(service.infer(request).status == 503);
  CHECK(service.infer("{").status == 400);  // a malformed request is still the client's error
}
