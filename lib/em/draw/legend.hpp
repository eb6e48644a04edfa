// A legend (colour swatch + name per row), shared by the label-map overlay and the charts; internal to lib/em/draw.
// Long lists are cut to the rows that fit, with a last row "+N more", so a 100-class legend never leaves its box.
#pragma once
#include <string>
#include <vector>

#include "em/draw/canvas.hpp"

namespace em::draw {

struct LegendEntry {
  std::string name;
  Rgb color;
};

struct LegendStyle {
  double text_size = 12;
  double max_width = 200;   // the legend's whole width, names cut with fit_text to fit it
  double max_height = 1e9;  // rows beyond it are summed up as "+N more"
  bool backdrop = false;    // a translucent white box behind it (legends drawn over an image)
};

// The size the legend takes (0 x 0 for no entries).
TextSize legend_size(const Canvas& canvas, const std::vector<LegendEntry>& entries, const LegendStyle& style);
// Draws it with its top-left corner at (x, y); returns its size.
TextSize draw_legend(Canvas& canvas, double x, double y, const std::vector<LegendEntry>& entries,
                     const LegendStyle& style);

}  // namespace em::draw
