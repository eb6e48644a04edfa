#include "em/draw/legend.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace em::draw {
namespace {

// What is drawn: the rows that fit (names already cut) and the box around them.
struct LegendLayout {
  std::vector<LegendEntry> rows;  // the last one is "+N more" (no swatch) when entries were left out
  bool has_more = false;
  double pad = 0, row_height = 0, swatch = 0, gap = 0;
  TextSize size;
};

LegendLayout layout(const Canvas& canvas, const std::vector<LegendEntry>& entries, const LegendStyle& style) {
  LegendLayout l;
  const double s = style.text_size;
  l.pad = std::round(s * 0.5);
  l.row_height = std::round(s * 1.5);
  l.swatch = std::round(s * 0.9);
  l.gap = std::round(s * 0.5);
  const double name_width = style.max_width - 2 * l.pad - l.swatch - l.gap;
  const auto fitting = static_cast<size_t>(std::max(0.0, std::floor((style.max_height - 2 * l.pad) / l.row_height)));
  if (entries.empty() || name_width <= 0 || fitting == 0) return l;
  size_t shown = entries.size();
  if (shown > fitting) {
    shown = fitting - 1;  // the last row tells how many are not listed
    l.has_more = true;
  }
  double widest = 0;
  for (size_t i = 0; i < shown; ++i) {
    l.rows.push_back({canvas.fit_text(entries[i].name, s, name_width), entries[i].color});
    widest = std::max(widest, canvas.measure(l.rows.back().name, s).width);
  }
  if (l.has_more) {
    l.rows.push_back({canvas.fit_text(fmt::format("+{} more", entries.size() - shown), s, name_width), kBlack});
    widest = std::max(widest, canvas.measure(l.rows.back().name, s).width);
  }
  l.size = {std::ceil(2 * l.pad + l.swatch + l.gap + widest), 2 * l.pad + l.row_height * l.rows.size()};
  return l;
}

}  // namespace

TextSize legend_size(const Canvas& canvas, const std::vector<LegendEntry>& entries, const LegendStyle& style) {
  return layout(canvas, entries, style).size;
}

TextSize draw_legend(Canvas& canvas, double x, double y, const std::vector<LegendEntry>& entries,
                     const LegendStyle& style) {
  const LegendLayout l = layout(canvas, entries, style);
  if (l.rows.empty()) return l.size;
  if (style.backdrop) {
    canvas.fill_rect(x, y, x + l.size.width, y + l.size.height, kWhite, 0.8);
    canvas.rect_outline(static_cast<int>(x), static_cast<int>(y), static_cast<int>(x + l.size.width),
                        static_cast<int>(y + l.size.height), Rgb{160, 160, 160}, 1);
  }
  for (size_t i = 0; i < l.rows.size(); ++i) {
    const double row_top = y + l.pad + l.row_height * i, middle = row_top + l.row_height / 2;
    const bool more_row = l.has_more && i + 1 == l.rows.size();
    if (!more_row) {
      const double sx = x + l.pad, sy = std::round(middle - l.swatch / 2);
      canvas.fill_rect(sx, sy, sx + l.swatch, sy + l.swatch, l.rows[i].color);
    }
    canvas.text(x + l.pad + l.swatch + l.gap, middle, l.rows[i].name, style.text_size, more_row ? Rgb{90, 90, 90} : kBlack,
                Align::left, VAlign::middle);
  }
  return l.size;
}

}  // namespace em::draw
