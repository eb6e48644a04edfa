// A picture being drawn: an RGB image in memory with cairo (anti-aliased shapes, UTF-8 text in DejaVu Sans) on top,
// read back as an io::Image and written as PNG. Every picture emkit draws (predictions, charts, contact sheets) is one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "em/io/image.hpp"

namespace em::draw {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};
inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};

// Colour of class `index` (>= 0): a fixed palette of 20 distinct colours (Ultralytics' order), repeated.
Rgb class_color(int64_t index);
// Heat-map colour of v in [0, 1] (clamped; NaN = light grey): a monotone light-to-dark sequential map, so a cell's
// colour alone tells its value. The confusion-matrix test reads cells back through this function.
Rgb heat_color(double v);
// Black or white, whichever reads better on `background`.
Rgb text_color_on(Rgb background);

enum class Align { left, center, right };
enum class VAlign { top, middle, bottom };

struct TextSize {
  double width = 0, height = 0;  // height = the font's ascent + descent at that size
};

class Canvas {
 public:
  // A blank canvas (width, height >= 1; at most 32767 each, cairo's limit: em::Error beyond).
  Canvas(int width, int height, Rgb background = kWhite);
  // Starts as `image` (1, 3 or 4 channels; alpha composited on white).
  explicit Canvas(const io::Image& image);
  ~Canvas();
  Canvas(Canvas&&) noexcept;
  Canvas& operator=(Canvas&&) noexcept;
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  int width() const;
  int height() const;

  // Outline of the pixel rectangle [x0, x1) x [y0, y1) with the stroke INSIDE it: with integer coordinates and
  // line_width w >= 1 exactly the pixels within w of the rectangle's edge change (no anti-aliased bleed outside).
  void rect_outline(int x0, int y0, int x1, int y1, Rgb color, int line_width = 2);
  // Fills [x0, x1) x [y0, y1) (clipped to the canvas), blended with `alpha` in [0, 1].
  void fill_rect(double x0, double y0, double x1, double y1, Rgb color, double alpha = 1.0);
  // Anti-aliased polyline through points (x, y) in canvas pixels; points that are not finite break the line.
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb color, double line_width = 2.0);
  // Blends `color` with weight alpha into exactly the pixels where mask != 0 (mask: width*height bytes, row-major,
  // the canvas's size); other pixels are untouched. No cairo: per-pixel arithmetic, round to nearest.
  void blend_mask(const std::vector<uint8_t>& mask, Rgb color, double alpha);

  // UTF-8 text (DejaVu Sans, anti-aliased) of pixel height `size` anchored at (x, y) by align/valign.
  void text(double x, double y, const std::string& utf8, double size, Rgb color, Align align = Align::left,
            VAlign valign = VAlign::top);
  // Same, rotated 90 degrees counter-clockwise (a y-axis label); (x, y) is the centre of the text.
  void text_vertical(double x, double y, const std::string& utf8, double size, Rgb color);
  TextSize measure(const std::string& utf8, double size) const;
  // `utf8` shortened with "…" until it fits max_width at `size` (unchanged when it fits); never cuts a UTF-8 sequence.
  std::string fit_text(const std::string& utf8, double size, double max_width) const;

  // Draws `other` scaled into the box [x, x+w) x [y, y+h): cairo's GOOD filter, bilinear when enlarging and an
  // average of the covered pixels when shrinking (a 10000-px image to a thumbnail without aliasing).
  void paste(const Canvas& other, double x, double y, double w, double h);

  // The pixels, 3 channels (RGB).
  io::Image to_image() const;
  Rgb pixel(int x, int y) const;
  // PNG through io::write_png (atomic; the parent folder must exist).
  void write_png(const std::string& path) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace em::draw
