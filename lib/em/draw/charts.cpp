#include "em/draw/charts.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/draw/legend.hpp"

namespace em::draw {
namespace {

// One look for every chart: sizes of the title, the axis labels, the tick labels and the legend, and its greys.
constexpr double kTitleSize = 18, kAxisLabelSize = 14, kTickSize = 12, kLegendSize = 12;
constexpr int kTitleBand = 44;       // the title's band over the plot
constexpr double kMaxNameWidth = 140;  // category / class names are cut (fit_text) to this many px
constexpr Rgb kGridLine{232, 232, 232}, kFrame{170, 170, 170}, kAxisText{60, 60, 60}, kMuted{120, 120, 120};

void draw_title(Canvas& c, const std::string& title) {
  c.text(c.width() / 2.0, 12, c.fit_text(title, kTitleSize, c.width() - 20), kTitleSize, kBlack, Align::center);
}

// ---- ticks: a step of 1, 2 or 5 x 10^k giving about `target` intervals, printed with as many decimals as the step
// needs ("0.2", "1500", "0.005").
struct Ticks {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> values;
  int decimals = 1;
};

double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// Ticks over [lo, hi]; a range not `fixed` is widened to whole steps, so the data never touches the frame's corner.
Ticks nice_ticks(double lo, double hi, bool fixed, int target = 5) {
  Ticks t;
  if (!(lo < hi)) {  // one value: a range around it
    const double d = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= d, hi += d;
    fixed = false;
  }
  t.step = nice_step((hi - lo) / target);
  if (!std::isfinite(t.step) || t.step <= 0) {  // spans near the double range: two ticks, the ends
    t.lo = lo, t.hi = hi, t.values = {lo, hi}, t.decimals = 0;
    return t;
  }
  if (!fixed) {
    lo = std::floor(lo / t.step + 1e-9) * t.step;
    hi = std::ceil(hi / t.step - 1e-9) * t.step;
  }
  t.lo = lo, t.hi = hi;
  // Whole multiples of the step (k * step, not a running sum): "0.3", never "0.30000000000000004".
  for (double k = std::ceil(lo / t.step - 1e-9); k <= std::floor(hi / t.step + 1e-9); ++k) t.values.push_back(k * t.step);
  t.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(t.step) + 1e-9)));
  return t;
}

std::string tick_label(double v, const Ticks& t) {
  if (std::abs(v) < t.step * 1e-6) v = 0;  // -0 and rounding noise
  if (std::abs(v) >= 1e7 || t.decimals > 6) return fmt::format("{:.3g}", v);
  return fmt::format("{:.{}f}", v, t.decimals);
}

double widest_tick_label(const Canvas& c, const Ticks& t) {
  double w = 0;
  for (double v : t.values) w = std::max(w, c.measure(tick_label(v, t), kTickSize).width);
  return w;
}

// The left margin that holds the y axis's label (rotated) and its tick labels.
double left_margin(const Canvas& c, const Ticks& y) {
  return std::ceil(10 + kAxisLabelSize * 1.2 + 8 + widest_tick_label(c, y) + 6);
}

// The plot area in pixels and the data ranges it shows.
struct Plot {
  double left = 0, top = 0, right = 0, bottom = 0;
  Ticks x, y;
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double py(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

// Horizontal grid lines at the y ticks with their labels, the y axis's label, and the frame.
void draw_y_axis(Canvas& c, const Plot& p, const std::string& y_label) {
  for (double v : p.y.values) {
    const double y = std::round(p.py(v));
    c.fill_rect(p.left, y, p.right, y + 1, kGridLine);
    c.text(p.left - 6, y + 0.5, tick_label(v, p.y), kTickSize, kAxisText, Align::right, VAlign::middle);
  }
  c.text_vertical(10 + kAxisLabelSize * 0.6, (p.top + p.bottom) / 2, c.fit_text(y_label, kAxisLabelSize, p.bottom - p.top),
                  kAxisLabelSize, kBlack);
}

void draw_frame(Canvas& c, const Plot& p) {
  c.rect_outline(static_cast<int>(p.left), static_cast<int>(p.top), static_cast<int>(p.right) + 1,
                 static_cast<int>(p.bottom) + 1, kFrame, 1);
}

// Liang-Barsky: the part of the segment a-b inside the plot area, if any (lines of a fixed range stop at its edge).
bool clip_segment(const Plot& p, double& ax, double& ay, double& bx, double& by) {
  double t0 = 0, t1 = 1;
  const double dx = bx - ax, dy = by - ay;
  const double edges[4][2] = {{-dx, ax - p.left}, {dx, p.right - ax}, {-dy, ay - p.top}, {dy, p.bottom - ay}};
  for (const auto& [q, r] : edges) {
    if (q == 0) {
      if (r < 0) return false;
      continue;
    }
    const double t = r / q;
    if (q < 0) t0 = std::max(t0, t);
    else t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  bx = ax + t1 * dx, by = ay + t1 * dy;
  ax = ax + t0 * dx, ay = ay + t0 * dy;
  return true;
}

// One line in pixels, cut to the plot area: a NaN between two points breaks it (non-finite data and clipped-away
// parts alike); a point with no finite neighbour is kept on its own (polyline draws it as a dot).
void draw_line(Canvas& c, const Plot& p, const Line& line, Rgb color, double width, bool markers) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> xs, ys;
  auto finite = [&](size_t i) { return std::isfinite(line.xs[i]) && std::isfinite(line.ys[i]); };
  auto inside = [&](double x, double y) { return x >= p.left && x <= p.right && y >= p.top && y <= p.bottom; };
  bool open = false;
  double end_x = 0, end_y = 0;
  for (size_t i = 0; i < line.xs.size(); ++i) {
    if (!finite(i)) continue;
    const double x = p.px(line.xs[i]), y = p.py(line.ys[i]);
    const bool alone = (i == 0 || !finite(i - 1)) && (i + 1 == line.xs.size() || !finite(i + 1));
    if (alone && inside(x, y)) {
      xs.insert(xs.end(), {nan, x, nan}), ys.insert(ys.end(), {nan, y, nan});
      open = false;
    }
    if (markers && inside(x, y)) c.polyline({x}, {y}, color, width + 3);
    if (i == 0 || !finite(i - 1)) continue;
    double ax = p.px(line.xs[i - 1]), ay = p.py(line.ys[i - 1]), bx = x, by = y;
    if (!clip_segment(p, ax, ay, bx, by)) {
      open = false;
      continue;
    }
    if (!open || ax != end_x || ay != end_y) xs.insert(xs.end(), {nan, ax}), ys.insert(ys.end(), {nan, ay});
    xs.push_back(bx), ys.push_back(by);
    end_x = bx, end_y = by, open = true;
  }
  c.polyline(xs, ys, color, width);
}

std::vector<LegendEntry> legend_of(const std::vector<std::string>& names) {
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < names.size(); ++i)
    if (!names[i].empty()) entries.push_back({names[i], class_color(static_cast<int64_t>(i))});
  return entries;
}

LegendStyle chart_legend_style(double plot_height) {
  LegendStyle s;
  s.text_size = kLegendSize;
  s.max_width = 180;
  s.max_height = plot_height;
  return s;
}

std::string cell_value_text(double v, bool normalised) {
  return normalised ? fmt::format("{:.2f}", v) : fmt::format("{}", static_cast<int64_t>(std::llround(v)));
}

// A vertical heat-colour scale from 0 (bottom) to `scale` (top), ticked, beside the matrix.
void draw_color_bar(Canvas& c, double x, double top, double bottom, double scale) {
  constexpr double kBarWidth = 16;
  const int h = static_cast<int>(bottom - top);
  for (int r = 0; r < h; ++r)
    c.fill_rect(x, top + r, x + kBarWidth, top + r + 1, heat_color(h > 1 ? 1.0 - static_cast<double>(r) / (h - 1) : 1.0));
  c.rect_outline(static_cast<int>(x), static_cast<int>(top), static_cast<int>(x + kBarWidth), static_cast<int>(bottom),
                 kFrame, 1);
  const Ticks t = nice_ticks(0, scale, true);
  for (double v : t.values) {
    const double y = std::round(bottom - 1 - v / scale * (h - 1));
    c.fill_rect(x + kBarWidth, y, x + kBarWidth + 4, y + 1, kAxisText);
    c.text(x + kBarWidth + 7, y + 0.5, tick_label(v, t), kTickSize, kAxisText, Align::left, VAlign::middle);
  }
}

}  // namespace

ConfusionChart confusion_matrix_chart(const std::vector<std::vector<int64_t>>& counts,
                                      const std::vector<std::string>& names, bool normalised, const std::string& title) {
  const size_t n = names.size();
  if (n == 0) fail("confusion matrix: no classes");
  if (counts.size() != n) fail("confusion matrix: {} rows for {} class names", counts.size(), n);
  for (size_t i = 0; i < n; ++i)
    if (counts[i].size() != n) fail("confusion matrix: row {} has {} columns, {} expected", i, counts[i].size(), n);

  std::vector<std::vector<double>> values(n, std::vector<double>(n));
  double scale = 1;
  if (normalised) {
    for (size_t i = 0; i < n; ++i) {
      double sum = 0;
      for (int64_t v : counts[i]) sum += static_cast<double>(v);
      for (size_t j = 0; j < n; ++j) values[i][j] = sum > 0 ? counts[i][j] / sum : 0;
    }
  } else {
    int64_t largest = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) values[i][j] = static_cast<double>(counts[i][j]), largest = std::max(largest, counts[i][j]);
    scale = largest > 0 ? static_cast<double>(largest) : 1;
  }

  // Cells big enough for their number up to kMaxAnnotatedClasses; beyond, a heat map whose side stays ~1200 px and
  // whose names shrink with the cells (left out below a legible 5 px).
  const bool annotated = n <= static_cast<size_t>(kMaxAnnotatedClasses);
  const int cell = annotated ? std::clamp(static_cast<int>(720 / n), 36, 80) : std::max(2, static_cast<int>(1200 / n));
  const double name_size = annotated ? 12 : std::min(11.0, cell * 0.8);
  const bool show_names = name_size >= 5;
  const Canvas probe(1, 1);  // for measuring before the canvas's size is known
  std::vector<std::string> shown(n);
  double widest = 0;
  if (show_names)
    for (size_t i = 0; i < n; ++i) {
      shown[i] = probe.fit_text(names[i], name_size, kMaxNameWidth);
      widest = std::max(widest, probe.measure(shown[i], name_size).width);
    }
  const int side = cell * static_cast<int>(n);
  const int left = static_cast<int>(std::ceil(10 + kAxisLabelSize * 1.2 + 8 + widest + 6));
  const int top = kTitleBand;
  const int color_bar = 16 + 16 + 7 + static_cast<int>(std::ceil(probe.measure(fmt::format("{}", static_cast<int64_t>(scale)), kTickSize).width)) + 16;
  const int width = std::max({left + side + color_bar, static_cast<int>(probe.measure(title, kTitleSize).width) + 40, 360});
  const int height = top + side + static_cast<int>(std::ceil(6 + widest + 8 + kAxisLabelSize * 1.2 + 12));

  ConfusionChart chart{Canvas(width, height, kWhite), {}};
  Canvas& c = chart.canvas;
  draw_title(c, title);
  chart.cells.assign(n, std::vector<Rect>(n));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      const Rect r{left + cell * static_cast<int>(j), top + cell * static_cast<int>(i), left + cell * static_cast<int>(j + 1),
                   top + cell * static_cast<int>(i + 1)};
      chart.cells[i][j] = r;
      const Rgb fill = heat_color(values[i][j] / scale);
      c.fill_rect(r.x0, r.y0, r.x1, r.y1, fill);
      // Zeros stay blank: in a mostly diagonal matrix the errors are what the eye should find.
      if (!annotated || values[i][j] == 0) continue;
      const std::string number = cell_value_text(values[i][j], normalised);
      double size = std::min(14.0, cell * 0.32);
      const double w = c.measure(number, size).width;
      if (w > cell - 6) size *= (cell - 6) / w;  // a 7-digit count in a 36-px cell
      if (size >= 6) c.text((r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0, number, size, text_color_on(fill), Align::center, VAlign::middle);
    }
  c.rect_outline(left - 1, top - 1, left + side + 1, top + side + 1, kFrame, 1);  // around the cells, not on them

  if (show_names)
    for (size_t k = 0; k < n; ++k) {
      const double middle = cell * (k + 0.5);
      c.text(left - 6, top + middle, shown[k], name_size, kAxisText, Align::right, VAlign::middle);
      const double w = c.measure(shown[k], name_size).width;
      c.text_vertical(left + middle, top + side + 6 + w / 2, shown[k], name_size, kAxisText);  // ends at the matrix
    }
  c.text(left + side / 2.0, top + side + 6 + widest + 8, "Predicted", kAxisLabelSize, kBlack, Align::center);
  c.text_vertical(10 + kAxisLabelSize * 0.6, top + side / 2.0, "True", kAxisLabelSize, kBlack);
  draw_color_bar(c, left + side + 16, top, top + side, scale);
  return chart;
}

Canvas bar_chart(const std::vector<std::string>& categories, const std::vector<Series>& series,
                 const std::string& title, const std::string& y_label) {
  const size_t n = categories.size(), s = std::max<size_t>(1, series.size());
  double largest = 0;
  for (const auto& se : series) {
    if (se.values.size() != n)
      fail("bar chart \"{}\": series \"{}\" has {} values for {} categories", title, se.name, se.values.size(), n);
    for (double v : se.values)
      if (std::isfinite(v)) largest = std::max(largest, v);
  }
  const Canvas probe(1, 1);
  Plot p;
  p.y = nice_ticks(0, std::max(1.0, largest), false);
  std::vector<std::string> names;
  for (const auto& se : series) names.push_back(se.name);
  const std::vector<LegendEntry> legend = legend_of(names);
  const double legend_w = legend_size(probe, legend, chart_legend_style(kChartHeight)).width;
  const double right_margin = 16 + (legend_w > 0 ? legend_w + 12 : 0);
  p.left = left_margin(probe, p.y);
  // Each category's group of bars gets an equal share of the standard width, and at least kMinBarWidth px per bar:
  // many categories make the chart wider instead of the bars invisible.
  const double room = kChartWidth - p.left - right_margin;
  const double group = std::max(n ? std::floor(room / n) : room, kMinBarWidth * s + kMinBarWidth);
  p.right = p.left + (n ? group * n : room);
  const int width = std::max(kChartWidth, static_cast<int>(std::ceil(p.right + right_margin)));

  // Names under their group, turned upright when the widest does not fit the group.
  double widest = 0;
  for (const auto& name : categories) widest = std::max(widest, probe.measure(probe.fit_text(name, kTickSize, kMaxNameWidth), kTickSize).width);
  const bool upright = widest > group - 4;
  const double name_size = upright ? std::min(kTickSize, group * 0.9) : kTickSize;
  if (upright) {
    widest = 0;
    for (const auto& name : categories) widest = std::max(widest, probe.measure(probe.fit_text(name, name_size, kMaxNameWidth), name_size).width);
  }
  p.top = kTitleBand;
  p.bottom = std::round(kChartHeight - 12 - (upright ? widest : name_size * 1.2) - 8);

  Canvas c(width, kChartHeight, kWhite);
  draw_title(c, title);
  draw_y_axis(c, p, y_label);
  const double bar = std::min(48.0, std::floor(group * 0.8 / s));
  const bool value_labels = bar >= 26 && n * s <= 40;
  for (size_t k = 0; k < n; ++k) {
    const double group_left = p.left + group * k, first = group_left + std::round((group - bar * s) / 2);
    for (size_t j = 0; j < series.size(); ++j) {
      const double v = series[j].values[k];
      if (!std::isfinite(v)) continue;
      const double x = first + bar * j, y = std::round(p.py(std::max(0.0, v)));
      c.fill_rect(x, y, x + bar, std::round(p.py(0)), class_color(static_cast<int64_t>(j)));
      if (value_labels)
        c.text(x + bar / 2, y - 2, v < 10 ? fmt::format("{:.2f}", v) : fmt::format("{:.0f}", v), 10, kAxisText,
               Align::center, VAlign::bottom);
    }
    const std::string name = c.fit_text(categories[k], name_size, upright ? kMaxNameWidth : group - 4);
    if (upright)
      c.text_vertical(group_left + group / 2, p.bottom + 6 + c.measure(name, name_size).width / 2, name, name_size, kAxisText);
    else
      c.text(group_left + group / 2, p.bottom + 6, name, name_size, kAxisText, Align::center);
  }
  draw_frame(c, p);
  if (n == 0) c.text((p.left + p.right) / 2, (p.top + p.bottom) / 2, "no data", kAxisLabelSize, kMuted, Align::center, VAlign::middle);
  draw_legend(c, p.right + 12, p.top, legend, chart_legend_style(p.bottom - p.top));
  return c;
}

Canvas line_chart(const std::vector<Line>& lines, const std::string& title, const std::string& x_label,
                  const std::string& y_label, Range x_range, Range y_range) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& line : lines) {
    if (line.xs.size() != line.ys.size())
      fail("line chart \"{}\": line \"{}\" has {} x values and {} y values", title, line.name, line.xs.size(), line.ys.size());
    for (size_t i = 0; i < line.xs.size(); ++i) {
      if (!std::isfinite(line.xs[i]) || !std::isfinite(line.ys[i])) continue;
      xlo = std::min(xlo, line.xs[i]), xhi = std::max(xhi, line.xs[i]);
      ylo = std::min(ylo, line.ys[i]), yhi = std::max(yhi, line.ys[i]);
    }
  }
  const bool has_data = xlo <= xhi;
  if (!has_data) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  Plot p;
  p.x = x_range.set() ? nice_ticks(x_range.lo, x_range.hi, true) : nice_ticks(xlo, xhi, false);
  p.y = y_range.set() ? nice_ticks(y_range.lo, y_range.hi, true) : nice_ticks(ylo, yhi, false);

  Canvas c(kChartWidth, kChartHeight, kWhite);
  std::vector<std::string> names;
  for (const auto& line : lines) names.push_back(line.name);
  const std::vector<LegendEntry> legend = legend_of(names);
  const double legend_w = legend_size(c, legend, chart_legend_style(kChartHeight)).width;
  p.left = left_margin(c, p.y);
  p.right = kChartWidth - 16 - (legend_w > 0 ? legend_w + 12 : 0);
  p.top = kTitleBand;
  p.bottom = std::round(kChartHeight - 12 - kAxisLabelSize * 1.2 - 8 - kTickSize * 1.2 - 6);

  draw_title(c, title);
  draw_y_axis(c, p, y_label);
  for (double v : p.x.values) {
    const double x = std::round(p.px(v));
    c.fill_rect(x, p.top, x + 1, p.bottom, kGridLine);
    c.text(x + 0.5, p.bottom + 6, tick_label(v, p.x), kTickSize, kAxisText, Align::center);
  }
  c.text((p.left + p.right) / 2, p.bottom + 6 + kTickSize * 1.2 + 8, c.fit_text(x_label, kAxisLabelSize, p.right - p.left),
         kAxisLabelSize, kBlack, Align::center);
  draw_frame(c, p);
  // Many lines (per-class PR curves) thinner, so they do not hide one another; dots where a line has few points
  // (evaluations once per epoch), so each measured point shows.
  const double width = lines.size() > 10 ? 1.0 : 2.0;
  for (size_t i = 0; i < lines.size(); ++i) {
    size_t finite = 0;
    for (size_t k = 0; k < lines[i].xs.size(); ++k) finite += std::isfinite(lines[i].xs[k]) && std::isfinite(lines[i].ys[k]);
    draw_line(c, p, lines[i], class_color(static_cast<int64_t>(i)), width, finite <= 40);
  }
  if (!has_data) c.text((p.left + p.right) / 2, (p.top + p.bottom) / 2, "no data", kAxisLabelSize, kMuted, Align::center, VAlign::middle);
  draw_legend(c, p.right + 12, p.top, legend, chart_legend_style(p.bottom - p.top));
  return c;
}

Canvas grid(const std::vector<const Canvas*>& tiles, const std::vector<std::string>& captions, int columns,
            int cell_size, const std::string& title) {
  if (columns < 1) fail("grid \"{}\": {} columns (at least 1)", title, columns);
  if (cell_size < 1) fail("grid \"{}\": cells of {} px (at least 1)", title, cell_size);
  if (captions.size() > tiles.size()) fail("grid \"{}\": {} captions for {} tiles", title, captions.size(), tiles.size());
  const int n = static_cast<int>(tiles.size());
  const int cols = std::clamp(n, 1, columns), rows = std::max(1, (n + cols - 1) / cols);
  const int caption_band = captions.empty() ? 0 : kGridCaption;
  const int top = title.empty() ? kGridGap : kTitleBand;
  Canvas c(cols * cell_size + (cols + 1) * kGridGap, top + rows * (cell_size + caption_band + kGridGap), kWhite);
  if (!title.empty()) draw_title(c, title);
  if (n == 0) c.text(c.width() / 2.0, top + cell_size / 2.0, "no images", kAxisLabelSize, kMuted, Align::center, VAlign::middle);
  for (int k = 0; k < n; ++k) {
    const Canvas* tile = tiles[static_cast<size_t>(k)];
    if (!tile) fail("grid \"{}\": tile {} is null", title, k);
    const int x = kGridGap + (k % cols) * (cell_size + kGridGap), y = top + (k / cols) * (cell_size + caption_band + kGridGap);
    // Fit the cell, aspect kept, never stretched; centred across and standing on the cell's bottom, so the caption
    // sits right under its picture.
    const double f = std::min(static_cast<double>(cell_size) / tile->width(), static_cast<double>(cell_size) / tile->height());
    const double w = std::max(1.0, std::round(tile->width() * f)), h = std::max(1.0, std::round(tile->height() * f));
    c.paste(*tile, x + std::round((cell_size - w) / 2), y + cell_size - h, w, h);
    if (static_cast<size_t>(k) < captions.size())
      c.text(x + cell_size / 2.0, y + cell_size + 3, c.fit_text(captions[static_cast<size_t>(k)], 12, cell_size), 12, kBlack,
             Align::center);
  }
  return c;
}

Canvas tile_charts(const std::vector<const Canvas*>& charts, int columns) {
  if (charts.empty()) fail("tile_charts: no charts");
  if (columns < 1) fail("tile_charts: {} columns (at least 1)", columns);
  const size_t cols = std::min(charts.size(), static_cast<size_t>(columns)), rows = (charts.size() + cols - 1) / cols;
  std::vector<int> col_width(cols), row_height(rows);
  for (size_t k = 0; k < charts.size(); ++k) {
    if (!charts[k]) fail("tile_charts: chart {} is null", k);
    col_width[k % cols] = std::max(col_width[k % cols], charts[k]->width());
    row_height[k / cols] = std::max(row_height[k / cols], charts[k]->height());
  }
  int width = 0, height = 0;
  for (int w : col_width) width += w;
  for (int h : row_height) height += h;
  Canvas c(width, height, kWhite);
  int y = 0;
  for (size_t r = 0; r < rows; ++r) {
    int x = 0;
    for (size_t col = 0; col < cols && r * cols + col < charts.size(); ++col) {
      const Canvas& chart = *charts[r * cols + col];
      c.paste(chart, x, y, chart.width(), chart.height());
      x += col_width[col];
    }
    y += row_height[r];
  }
  return c;
}

}  // namespace em::draw
