// Charts on pixels: a confusion-matrix cell has the colour of its value, 100 classes give a number-free heat map of
// a sensible size, and the other charts have their documented shapes and survive NaN.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "draw_test_support.hpp"
#include "em/core/error.hpp"
#include "em/draw/charts.hpp"

using em::draw::Canvas;
using em::draw::Rgb;
using em::draw::kWhite;

namespace {

// The pixel 2 px in from a cell's top-left corner: away from the number printed in the cell's middle.
Rgb corner_of(const em::draw::ConfusionChart& chart, size_t i, size_t j) {
  const em::draw::Rect& r = chart.cells[i][j];
  return chart.canvas.pixel(r.x0 + 2, r.y0 + 2);
}

}  // namespace

TEST_CASE("confusion matrix: the cell of (true i, predicted j) has the heat colour of its value", "[draw][charts]") {
  const std::vector<std::vector<int64_t>> counts{{5, 1, 0}, {2, 7, 1}, {0, 3, 9}};
  const std::vector<std::string> names{"cat", "dog", "Żółw"};

  const auto chart = em::draw::confusion_matrix_chart(counts, names, false, "Confusion matrix");
  REQUIRE(chart.cells.size() == 3);
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 3; ++j) {
      INFO("cell " << i << ", " << j);
      CHECK(em::test::near(corner_of(chart, i, j), em::draw::heat_color(counts[i][j] / 9.0), 2));
    }
  // Rows are the truth (down), columns the prediction (across).
  CHECK(chart.cells[0][1].x0 > chart.cells[0][0].x0);
  CHECK(chart.cells[1][0].y0 > chart.cells[0][0].y0);
  // The count is printed: the middle of a non-zero cell holds ink of another colour than the cell's.
  const auto& mid = chart.cells[1][1];
  const Rgb fill = em::draw::heat_color(7 / 9.0);
  bool printed = false;
  for (int y = mid.y0 + 4; y < mid.y1 - 4; ++y)
    for (int x = mid.x0 + 4; x < mid.x1 - 4; ++x) printed |= !em::test::near(chart.canvas.pixel(x, y), fill, 2);
  CHECK(printed);

  const auto normalised = em::draw::confusion_matrix_chart(counts, names, true, "Confusion matrix (normalised)");
  for (size_t i = 0; i < 3; ++i) {
    double sum = 0;
    for (int64_t v : counts[i]) sum += static_cast<double>(v);
    for (size_t j = 0; j < 3; ++j) {
      INFO("cell " << i << ", " << j);
      CHECK(em::test::near(corner_of(normalised, i, j), em::draw::heat_color(counts[i][j] / sum), 2));
    }
  }
}

TEST_CASE("confusion matrix: a row of zeros stays 0 when normalised; bad shapes are refused", "[draw][charts]") {
  const auto chart = em::draw::confusion_matrix_chart({{0, 0}, {1, 3}}, {"a", "b"}, true, "m");
  CHECK(em::test::near(corner_of(chart, 0, 0), em::draw::heat_color(0), 2));
  CHECK(em::test::near(corner_of(chart, 1, 1), em::draw::heat_color(0.75), 2));
  CHECK_THROWS_AS(em::draw::confusion_matrix_chart({{1, 2}}, {"a", "b"}, false, "m"), em::Error);
  CHECK_THROWS_AS(em::draw::confusion_matrix_chart({{1}, {2, 3}}, {"a", "b"}, false, "m"), em::Error);
  CHECK_THROWS_AS(em::draw::confusion_matrix_chart({}, {}, false, "m"), em::Error);
}

TEST_CASE("confusion matrix of 100 classes: a heat map without numbers of a reasonable size", "[draw][charts]") {
  const size_t n = 100;
  std::vector<std::vector<int64_t>> counts(n, std::vector<int64_t>(n, 0));
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    counts[i][i] = 50 + static_cast<int64_t>(i);
    counts[i][(i + 1) % n] = 7;
    names.push_back("class name number " + std::to_string(i));
  }
  const auto chart = em::draw::confusion_matrix_chart(counts, names, false, "100 classes");
  CHECK(chart.canvas.width() < 4000);
  CHECK(chart.canvas.height() < 4000);
  CHECK(chart.canvas.width() > 500);
  // Every pixel of a cell is its colour: no number drawn in it.
  for (auto [i, j] : {std::pair<size_t, size_t>{0, 0}, {5, 6}, {99, 99}, {40, 3}}) {
    const em::draw::Rect& r = chart.cells[i][j];
    const Rgb want = em::draw::heat_color(counts[i][j] / 149.0);
    INFO("cell " << i << ", " << j);
    CHECK(r.x1 - r.x0 >= 2);
    int off = 0;
    for (int y = r.y0; y < r.y1; ++y)
      for (int x = r.x0; x < r.x1; ++x) off += !em::test::near(chart.canvas.pixel(x, y), want, 2);
    CHECK(off == 0);
  }
}

TEST_CASE("line_chart is kChartWidth x kChartHeight, draws its lines and survives NaN", "[draw][charts]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<em::draw::Line> lines{{"loss", {0, 1, 2, 3, 4, 5}, {2.0, 1.5, nan, 0.9, 0.7, 0.6}},
                                          {"lr", {0, 2, 4}, {nan, nan, nan}},
                                          {"one point", {3}, {1.0}}};
  const Canvas c = em::draw::line_chart(lines, "training", "step", "value");
  CHECK(c.width() == em::draw::kChartWidth);
  CHECK(c.height() == em::draw::kChartHeight);
  CHECK(em::test::ink_of(c, [](Rgb p) { return p == em::draw::class_color(0); }).count > 100);
  CHECK(em::test::ink_of(c, [](Rgb p) { return p == em::draw::class_color(2); }).count > 4);  // the lone point's dot

  // A fixed range cuts the lines at the plot's edge: nothing is drawn beyond the frame.
  const Canvas pr = em::draw::line_chart({{"cls", {0, 0.5, 1, 2}, {1, 0.9, 0.2, -5}}}, "PR", "recall", "precision",
                                         {0, 1}, {0, 1});
  const auto line = em::test::ink_of(pr, [](Rgb p) { return p == em::draw::class_color(0); });
  CHECK(line.count > 50);
  // The frame's bottom edge: the lowest row that is mostly frame colour.
  int frame_bottom = -1;
  for (int y = pr.height() - 1; y >= 0 && frame_bottom < 0; --y) {
    int frame = 0;
    for (int x = 0; x < pr.width(); ++x) frame += pr.pixel(x, y) == Rgb{170, 170, 170};
    if (frame > pr.width() / 2) frame_bottom = y;
  }
  REQUIRE(frame_bottom > 0);
  CHECK(line.y1 <= frame_bottom + 2);  // y = -5 is far below: the line stops at 0

  CHECK(em::draw::line_chart({}, "empty", "x", "y").width() == em::draw::kChartWidth);
  CHECK(em::draw::line_chart({{"all nan", {nan, 1}, {nan, nan}}}, "nan", "x", "y").height() == em::draw::kChartHeight);
  CHECK_THROWS_AS(em::draw::line_chart({{"bad", {1, 2}, {1}}}, "t", "x", "y"), em::Error);
}

TEST_CASE("bar_chart is kChartHeight tall and widens for many categories; NaN draws no bar", "[draw][charts]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Canvas few = em::draw::bar_chart({"cat", "dog", "bird"}, {{"precision", {0.9, 0.5, nan}}, {"recall", {0.8, 0.4, 0.3}}},
                                         "per class", "score");
  CHECK(few.width() == em::draw::kChartWidth);
  CHECK(few.height() == em::draw::kChartHeight);
  // The bars in the plot's lower half (the legend's swatches are at its top).
  const auto precision = em::test::ink_of(few, [](Rgb p) { return p == em::draw::class_color(0); }, 300, 450);
  const auto recall = em::test::ink_of(few, [](Rgb p) { return p == em::draw::class_color(1); }, 300, 450);
  CHECK(precision.count > 100);
  CHECK(recall.x1 > precision.x1 + 100);  // bird has a recall bar only

  std::vector<std::string> categories;
  std::vector<double> values;
  for (int i = 0; i < 100; ++i) categories.push_back("category " + std::to_string(i)), values.push_back(i / 100.0);
  const Canvas many = em::draw::bar_chart(categories, {{"a", values}, {"b", values}}, "many", "score");
  CHECK(many.height() == em::draw::kChartHeight);
  CHECK(many.width() >= 100 * (2 * em::draw::kMinBarWidth + em::draw::kMinBarWidth));
  CHECK(many.width() < 4000);
  CHECK_THROWS_AS(em::draw::bar_chart({"a"}, {{"s", {1, 2}}}, "t", "y"), em::Error);
}

TEST_CASE("grid and tile_charts have their documented sizes", "[draw][charts]") {
  Canvas wide(200, 100, Rgb{255, 0, 0}), tall(50, 100, Rgb{0, 0, 255});
  const std::vector<const Canvas*> tiles{&wide, &tall, &wide, &tall, &wide};
  const int cell = 64, gap = em::draw::kGridGap;
  const Canvas sheet = em::draw::grid(tiles, {"a", "b", "c", "d", "e"}, 3, cell, "contact sheet");
  CHECK(sheet.width() == 3 * cell + 4 * gap);
  CHECK(sheet.height() > 2 * (cell + em::draw::kGridCaption + gap));
  // The first tile fits its cell's width, aspect kept: 64 x 32 red.
  CHECK(em::test::ink_of(sheet, [](Rgb p) { return p == Rgb{255, 0, 0}; }).count >= 3 * 62 * 30);
  const Canvas no_title = em::draw::grid(tiles, {}, 2, cell, "");
  CHECK(no_title.width() == 2 * cell + 3 * gap);
  CHECK(no_title.height() == gap + 3 * (cell + gap));
  CHECK(em::draw::grid({}, {}, 4, cell, "empty").width() == cell + 2 * gap);
  CHECK_THROWS_AS(em::draw::grid(tiles, {}, 0, cell, ""), em::Error);

  Canvas chart_a(300, 200), chart_b(100, 250), chart_c(120, 80);
  const Canvas page = em::draw::tile_charts({&chart_a, &chart_b, &chart_c}, 2);
  CHECK(page.width() == 300 + 100);
  CHECK(page.height() == 250 + 80);
  CHECK_THROWS_AS(em::draw::tile_charts({}, 2), em::Error);
}
