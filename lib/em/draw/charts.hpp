// Charts of numbers emkit already computes: confusion matrices, per-class bars, curves against step or recall,
// contact-sheet grids. Fixed sizes and fonts so a chart reads the same in every run; all return a Canvas.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/draw/canvas.hpp"

namespace em::draw {

// The standard chart: line_chart's size, and bar_chart's height and least width.
constexpr int kChartWidth = 800, kChartHeight = 500;

// Pixel rectangle [x0, x1) x [y0, y1) of one chart element (what the pixel tests read back).
struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// counts[true][predicted] (square, names.size() rows). normalised: each row divided by its sum (rows summing to 0
// stay 0), values printed with 2 decimals; otherwise counts printed as integers, colours scaled by the largest
// count; zeros are left blank, so the errors stand out. Class names on both axes (x labels rotated, cut with
// fit_text), a colour scale beside the matrix. With more than kMaxAnnotatedClasses classes the numbers are left
// out (a heat map of ~1200 px a side) and the names get smaller, so 100 classes stay readable. Throws em::Error
// when counts is not names.size() x names.size() or names is empty.
constexpr int kMaxAnnotatedClasses = 30;
struct ConfusionChart {
  Canvas canvas;
  std::vector<std::vector<Rect>> cells;  // cells[i][j]: the cell of (true i, predicted j), filled with heat_color(v)
};
ConfusionChart confusion_matrix_chart(const std::vector<std::vector<int64_t>>& counts,
                                      const std::vector<std::string>& names, bool normalised, const std::string& title);

// Grouped bars: one group per category (x axis, names under it, rotated when crowded), one bar per series in
// class_color(series index), a legend, y axis from 0 to max(1, largest value) with ticks. NaN values draw no bar.
// kChartHeight tall; kChartWidth wide, or wider where the categories need more: each category's group is at least
// kMinBarWidth px per series plus kMinBarWidth px of gap. Throws em::Error when a series has not one value per category.
constexpr double kMinBarWidth = 6;
struct Series {
  std::string name;
  std::vector<double> values;  // one per category (bar charts) or per x (line charts)
};
Canvas bar_chart(const std::vector<std::string>& categories, const std::vector<Series>& series,
                 const std::string& title, const std::string& y_label);

// Lines of (x, y) points, one per series, in class_color(series index), with a legend, axes with "nice" ticks
// (1, 2, 5 x 10^k) covering the data, axis labels and a title. Non-finite points break a line. x_range/y_range
// fixed when given as {lo, hi} with lo < hi (PR curves: {0, 1} both), otherwise from the data. kChartWidth x
// kChartHeight; no finite point at all gives empty axes saying "no data".
struct Line {
  std::string name;
  std::vector<double> xs, ys;
};
struct Range {
  double lo = 0, hi = 0;
  bool set() const { return lo < hi; }
};
Canvas line_chart(const std::vector<Line>& lines, const std::string& title, const std::string& x_label,
                  const std::string& y_label, Range x_range = {}, Range y_range = {});

// A contact sheet: tiles scaled to fit cells of cell_size px (aspect kept), `columns` per row, each captioned
// (fit_text) under its tile, a title band on top. With C = min(columns, tiles) (1 for no tiles) and R rows:
// C * cell_size + (C + 1) * kGridGap px wide, R * (cell_size + kGridCaption (when captions are given) + kGridGap)
// tall plus the title band. captions: one per tile, or fewer (the rest uncaptioned).
constexpr int kGridGap = 8, kGridCaption = 18;
Canvas grid(const std::vector<const Canvas*>& tiles, const std::vector<std::string>& captions, int columns,
            int cell_size, const std::string& title);

// Several charts stacked in a grid of `columns` (em-plot's one-page summary, results.png in Ultralytics' terms),
// unscaled: each column as wide as its widest chart, each row as tall as its tallest, white where a chart is
// smaller. Throws em::Error for no charts.
Canvas tile_charts(const std::vector<const Canvas*>& charts, int columns);

}  // namespace em::draw
