#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "em/serve/metrics.hpp"

using em::serve::Histogram;
using em::serve::PrometheusText;

TEST_CASE("histogram buckets are cumulative and 'less than or equal', +Inf is the count", "[serve][metrics]") {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 4.0, 9.0}) h.observe(v);
  const auto s = h.snapshot();
  CHECK(s.cumulative == std::vector<uint64_t>{2, 3, 4});  // 1.0 falls in le="1", 4.0 in le="4"
  CHECK(s.count == 5);
  CHECK(s.sum == Approx(16.0));

  PrometheusText text;
  text.family("x_seconds", "histogram", "A test.");
  text.histogram("x_seconds", {{"model", "a"}}, s);
  CHECK(text.text() ==
        "# HELP x_seconds A test.\n# TYPE x_seconds histogram\n"
        "x_seconds_bucket{model=\"a\",le=\"1\"} 2\nx_seconds_bucket{model=\"a\",le=\"2\"} 3\n"
        "x_seconds_bucket{model=\"a\",le=\"4\"} 4\nx_seconds_bucket{model=\"a\",le=\"+Inf\"} 5\n"
        "x_seconds_sum{model=\"a\"} 16\nx_seconds_count{model=\"a\"} 5\n");
}

TEST_CASE("label values are escaped and sample values spelled as Prometheus reads them", "[serve][metrics]") {
  CHECK(em::serve::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(em::serve::format_sample_value(3) == "3");
  CHECK(em::serve::format_sample_value(0.25) == "0.25");
  CHECK(em::serve::format_sample_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(em::serve::format_sample_value(std::nan("")) == "NaN");
}

TEST_CASE("the process's resident memory and start time are read from /proc", "[serve][metrics]") {
  CHECK(em::serve::process_resident_bytes() > (1 << 20));
  const double start = em::serve::process_start_time_seconds();
  const double now = static_cast<double>(std::time(nullptr));
  CHECK(start > now - 3600);  // this test binary started within the hour
  CHECK(start <= now + 1);
}

TEST_CASE("images per second counts the passes of the last 10 seconds", "[serve][metrics]") {
  em::serve::ModelMetrics m;
  m.record_pass(16, 0.1);
  m.record_pass(4, 0.05);
  CHECK(m.images_per_second() == Approx(2.0));  // 20 images over the 10 s window
  const auto b = m.batch_size.snapshot();
  CHECK(b.count == 2);
  CHECK(b.cumulative[2] == 1);  // le="4": the pass of 4
}
