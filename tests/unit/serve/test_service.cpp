#include <catch2/catch.hpp>

#include "em/core/error.hpp"
#include "em/io/image.hpp"
#include "em/io/request.hpp"
#include "em/serve/service.hpp"

#include <atomic>
#include <future>
#include <thread>

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
  int64_t input_pixels(int width, int height) const override { return int64_t{width} * height; }
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
    int64_t input_pixels(int, int) const override { return 1; }
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

TEST_CASE("the memory budget waits for room and gives up after its wait", "[serve]") {
  em::serve::MemoryBudget budget(100);
  using ms = std::chrono::milliseconds;
  auto a = budget.reserve(60, ms(0));
  REQUIRE(a);
  CHECK_FALSE(budget.reserve(60, ms(20)));   // no room within the wait
  CHECK_FALSE(budget.reserve(101, ms(0)));   // never fits
  CHECK(budget.in_use() == 60);
  std::thread releaser([&] {
    std::this_thread::sleep_for(ms(50));
    a.release();
  });
  auto b = budget.reserve(60, ms(5000));     // woken by the release
  releaser.join();
  CHECK(b);
  CHECK(budget.in_use() == 60);
  b = {};
  CHECK(budget.in_use() == 0);
}

TEST_CASE("a request over the memory limit is 413 before any image is decoded; one without room waits, then 503",
          "[serve]") {
  // MeanPredictor that counts prepare() calls and holds predict() until the gate opens.
  struct GatedPredictor : MeanPredictor {
    std::atomic<int>* prepared;
    std::shared_future<void> gate;
    Prepared prepare(const em::io::Image& image) const override {
      ++*prepared;
      return MeanPredictor::prepare(image);
    }
    std::vector<Json> predict(const std::vector<Prepared>& batch) const override {
      gate.wait();
      return MeanPredictor::predict(batch);
    }
  };
  std::atomic<int> prepared{0};
  std::promise<void> open;
  auto predictor = std::make_unique<GatedPredictor>();
  predictor->prepared = &prepared;
  predictor->gate = open.get_future().share();
  // 120x120: 36 bytes per model-input pixel + 8 per decoded pixel of the largest = 633,600 bytes: one fits in
  // 1 MiB, two (1,152,000 bytes) do not.
  em::serve::MemoryLimits limits;
  limits.request_mb = 1;
  limits.in_flight_mb = 1;
  limits.wait_ms = 100;
  em::serve::InferenceService service(std::move(predictor), "model-dir", BatcherOptions{16, 1}, limits);
  const std::string one = em::io::encode_request({png_of(120, 120, 7)});
  const std::string two = em::io::encode_request({png_of(120, 120, 7), png_of(120, 120, 9)});

  auto too_large = service.infer(two);
  CHECK(too_large.status == 413);
  CHECK_THAT(too_large.body, Catch::Contains("2 images") && Catch::Contains("--max_request_mb"));
  CHECK(prepared == 0);

  auto first = std::async(std::launch::async, [&] { return service.infer(one); });
  while (prepared < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto busy = service.infer(one);  // the first holds the whole budget until its forward pass
  CHECK(busy.status == 503);
  CHECK_THAT(busy.body, Catch::Contains("--max_memory_in_flight_mb"));
  CHECK(prepared == 1);
  open.set_value();
  CHECK(first.get().status == 200);
  CHECK(service.infer(one).status == 200);  // the reservation was given back with the answer
}
