// Progress lines off a terminal (what CI logs and Makefiles see) and counts in messages.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "em/core/plural.hpp"
#include "em/core/progress.hpp"
#include "test_support.hpp"

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("off a terminal the final line is printed once, not again after an update that showed it",
          "[core][progress]") {
  const std::string text = em::test::stderr_of([] {
    em::Progress p("eval validation", 4, "image");
    p.update(4);  // the first update draws
    p.finish();
  });
  CHECK(count(text, "image 4/4 (100%)") == 1);
  const std::string changed = em::test::stderr_of([] {
    em::Progress p("train", 4, "step");
    p.update(1);  // drawn
    p.update(2);  // throttled (lines every 10 s off a terminal)
    p.finish();   // the last line shown was step 1: the final state is drawn
  });
  CHECK(count(changed, "step 1/4") == 1);
  CHECK(count(changed, "step 2/4") == 1);
}

TEST_CASE("a resumed progress line starts at its step, not at 0", "[core][progress]") {
  const std::string text = em::test::stderr_of([] {
    em::Progress p("train", 15, "step");
    p.start_at(15);  // resumed from the last checkpoint of a finished run: nothing left to do
    p.finish();
  });
  CHECK(count(text, "step 15/15 (100%)") == 1);
  CHECK(count(text, "step 0/") == 0);
}

TEST_CASE("counts name one thing in the singular", "[core][progress]") {
  CHECK(em::count_of(1, "step") == "1 step");
  CHECK(em::count_of(3, "step") == "3 steps");
  CHECK(em::count_of(0, "image") == "0 images");
  CHECK(em::count_of(1, "forward pass", "forward passes") == "1 forward pass");
  CHECK(em::count_of(2, "forward pass", "forward passes") == "2 forward passes");
}
