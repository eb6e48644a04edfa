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
  const std::vector<std::string>& labels() const override { return labels_; }
  Prepared prepare(const em::io::Image& image) const override {
    double sum = 0;
    for (uint8_t v : image.pixels) sum += v;
    return {torch::full({1}, static_cast<float>(sum / static_cast<double>(image.pixels.size()))), image.width,
            image.height, {}};
  }
  int64_t input_pixels(int width, int height) const override { return int64_t{width} * height; }
  std::vector<Json> predict(const std::vector<Prepared>& batch) const override {
    std::vector<Json> out;
    for (const auto& p : batch)
      out.push_back(Json::array({Json{{"score", p.pixel_values.item<float>()}, {"label", "mean"}}}));
    return out;
  }

 private:
  std::vector<std::string> labels_{"mean"};
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
    const std::vector<std::string>& labels() const override { return labels_; }
    Prepared prepare(const em::io::Image& image) const override {
      return {torch::zeros({1}), image.width, image.height, {}};
    }
    int64_t input_pixels(int, int) const override { return 1; }
    std::vector<Json> predict(const std::vector<Prepared>&) const override { em::fail("out of memory"); }

   private:
    std::vector<std::string> labels_{"mean"};
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

namespace {
// Answers each image with the request parameters it carried to the forward pass, and records batch sizes.
struct ParameterEcho : MeanPredictor {
  std::vector<size_t>* batch_sizes = nullptr;
  std::shared_future<void> gate;
  std::vector<Json> predict(const std::vector<Prepared>& batch) const override {
    if (gate.valid()) gate.wait();
    if (batch_sizes) batch_sizes->push_back(batch.size());
    std::vector<Json> out;
    for (const auto& p : batch)
      out.push_back(Json::array({Json{{"top_k", p.parameters.top_k ? *p.parameters.top_k : -1}}}));
    return out;
  }
};
}  // namespace

TEST_CASE("request parameters reach each image's forward pass; requests with different ones share a batch",
          "[serve]") {
  std::vector<size_t> sizes;
  std::promise<void> open;
  auto predictor = std::make_unique<ParameterEcho>();
  predictor->batch_sizes = &sizes;
  predictor->gate = open.get_future().share();
  em::serve::InferenceService service(std::move(predictor), "model-dir", BatcherOptions{16, 200});
  const std::string image = em::io::encode_request({png_of(2, 2, 1)});
  auto with = [&](const std::string& parameters) {
    Json request = em::io::parse_json(image, "request");
    request["parameters"] = em::io::parse_json(parameters, "parameters");
    return em::io::dump_json(request);
  };
  auto a = std::async(std::launch::async, [&] { return service.infer(with(R"({"top_k": 2})")); });
  auto b = std::async(std::launch::async, [&] { return service.infer(with(R"({"top_k": 7})")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both queued within the 200 ms delay
  open.set_value();
  CHECK(a.get().body == "[{\"top_k\":2}]\n");
  CHECK(b.get().body == "[{\"top_k\":7}]\n");
  CHECK(sizes == std::vector<size_t>{2});  // one forward pass for both

  // A parameter this algorithm does not take, and unknown or out-of-range ones: 400 naming each.
  auto threshold = service.infer(with(R"({"threshold": 0.5})"));
  CHECK(threshold.status == 400);
  CHECK_THAT(threshold.body, Catch::Contains("parameters.threshold") && Catch::Contains("only detection models"));
  auto bad = service.infer(with(R"({"top_k": -1, "colour": "red"})"));
  CHECK(bad.status == 400);
  CHECK_THAT(bad.body, Catch::Contains("parameters.top_k -1") && Catch::Contains("parameters.colour: unknown"));
}

TEST_CASE("KServe V1 answers wrap one list per instance in predictions", "[serve]") {
  em::serve::InferenceService service(std::make_unique<MeanPredictor>(), "model-dir", BatcherOptions{16, 1});
  MeanPredictor reference;
  const std::vector<std::string> images = {png_of(5, 4, 10), png_of(3, 3, 200)};
  em::serve::InferCall v1;
  v1.v1 = true;
  auto two = service.infer(em::io::encode_request(images), v1);
  REQUIRE(two.status == 200);
  CHECK(two.images == 2);
  Json expected = {{"predictions", Json::array()}};
  for (auto& r : reference.predict_bytes(images)) expected["predictions"].push_back(r);
  CHECK(two.body == em::io::dump_json(expected) + "\n");
  // One instance is still a list of one (em-predict's shape unwraps it).
  auto one = service.infer(em::io::encode_request({images[0]}), v1);
  CHECK(em::io::parse_json(one.body, "reply")["predictions"].size() == 1);
}

TEST_CASE("a full queue is 503 with Retry-After at once; a request past its deadline is 504 and leaves the queue",
          "[serve]") {
  std::promise<void> open;
  std::vector<size_t> sizes;
  auto predictor = std::make_unique<ParameterEcho>();
  predictor->batch_sizes = &sizes;
  predictor->gate = open.get_future().share();
  em::serve::ServiceOptions options;
  options.batching = BatcherOptions{1, 0, /*max_queue_images=*/1};
  options.request_timeout_ms = 300;
  em::serve::InferenceService service(std::move(predictor), "model-dir", options);
  const std::string one = em::io::encode_request({png_of(2, 2, 1)});

  // The first holds the model (gate closed); the second waits in the queue; the third finds the queue full.
  auto first = std::async(std::launch::async, [&] { return service.infer(one); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // taken from the queue into its (held) pass
  auto second = std::async(std::launch::async, [&] { return service.infer(one); });
  while (service.stats().queued_images != 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto t0 = std::chrono::steady_clock::now();
  auto full = service.infer(one);
  CHECK(full.status == 503);
  CHECK(full.retry_after_s == 1);
  CHECK_THAT(full.body, Catch::Contains("--max_queue_images 1"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(250));  // at once, not at the deadline

  auto late = second.get();  // its 300 ms pass while the model is held
  CHECK(late.status == 504);
  CHECK_THAT(late.body, Catch::Contains("--request_timeout_ms") && Catch::Contains("waiting in the queue"));
  CHECK(service.stats().queued_images == 0);
  CHECK(service.stats().cancelled == 1);
  auto held = first.get();  // the first also passed its deadline, inside the forward pass
  CHECK(held.status == 504);
  CHECK_THAT(held.body, Catch::Contains("forward pass"));
  open.set_value();
  service.stop();
  CHECK(sizes == std::vector<size_t>{1});  // the cancelled request never reached the model
}
