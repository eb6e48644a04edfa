#include "em/draw/canvas.hpp"

#include <cairo-ft.h>
#include <cairo.h>
#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <array>
#include <cmath>

#include "em/core/error.hpp"
#include "em/io/file.hpp"

namespace em::draw {
namespace {

// The one font every picture uses, loaded from its file rather than looked up through fontconfig: the same glyphs
// on every machine, whatever its fontconfig configuration says (pixel tests and docs pictures stay comparable).
constexpr const char* kFontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
// cairo's image surfaces address pixels with 16-bit coordinates (pixman): larger surfaces fail to draw.
constexpr int kMaxSide = 32767;

// Loaded once per process and kept to its end: cairo font faces are thread-safe and cairo-ft locks the FT_Face
// while it renders, so every canvas on every thread shares this one.
cairo_font_face_t* font_face() {
  struct Font {
    FT_Library library = nullptr;
    FT_Face face = nullptr;
    cairo_font_face_t* cairo_face = nullptr;
    Font() {
      if (FT_Init_FreeType(&library) != 0) fail("FreeType could not be initialised (drawing text)");
      if (const FT_Error e = FT_New_Face(library, kFontPath, 0, &face); e != 0) {
        FT_Done_FreeType(library);
        fail_at(kFontPath, "cannot load the DejaVu Sans font (FreeType error {}): install the Debian package "
                "fonts-dejavu-core", e);
      }
      cairo_face = cairo_ft_font_face_create_for_ft_face(face, 0);
      if (cairo_font_face_status(cairo_face) != CAIRO_STATUS_SUCCESS)
        fail_at(kFontPath, "cairo cannot use the font: {}", cairo_status_to_string(cairo_font_face_status(cairo_face)));
    }
  };
  // A constructor that throws leaves the static unset, so a later call tries again (and says the same).
  static const Font font;
  return font.cairo_face;
}

// Grey-level antialiasing (no subpixel colour fringes in a PNG) and no hinting: glyphs keep their true shapes and
// advances at every size, so text measured is text drawn.
cairo_font_options_t* font_options() {
  static cairo_font_options_t* const options = [] {
    cairo_font_options_t* o = cairo_font_options_create();
    cairo_font_options_set_antialias(o, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(o, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(o, CAIRO_HINT_METRICS_OFF);
    return o;
  }();
  return options;
}

void check_size(int width, int height) {
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
    fail("canvas: size {}x{} is out of range (1..{} px a side)", width, height, kMaxSide);
}

// cairo wants colour channels in [0, 1].
void set_source(cairo_t* cr, Rgb c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

// A pixel of a CAIRO_FORMAT_RGB24 surface: one native-endian uint32 0x00RRGGBB.
uint32_t pack(Rgb c) { return (uint32_t(c.r) << 16) | (uint32_t(c.g) << 8) | c.b; }
Rgb unpack(uint32_t v) { return {uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

// `s` with each byte that does not start a valid UTF-8 sequence replaced by U+FFFD: cairo refuses invalid UTF-8 by
// putting the whole context in an error state, and labels come from user data. Validity is io::is_valid_utf8's rule.
std::string utf8_valid(const std::string& s) {
  if (io::is_valid_utf8(s)) return s;
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (n <= 4 && !io::is_valid_utf8(std::string_view(s).substr(i, n))) ++n;
    if (n <= 4 && i + n <= s.size()) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\uFFFD";
      ++i;
    }
  }
  return out;
}

// Offsets in valid UTF-8 where a code point starts, and the end: the places a text may be cut.
std::vector<size_t> utf8_boundaries(const std::string& s) {
  std::vector<size_t> cuts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) cuts.push_back(i);
  cuts.push_back(s.size());
  return cuts;
}

// An opacity in [0, 1]; NaN draws nothing (cairo would put the context in an error state).
double opacity(double alpha) { return std::isnan(alpha) ? 0.0 : std::clamp(alpha, 0.0, 1.0); }

// cairo's fixed-point coordinates overflow near 2^23: points far outside any canvas are pulled in (the part of a
// line that shows does not change).
double clamp_coordinate(double v) { return std::clamp(v, -1e6, 1e6); }

}  // namespace

struct Canvas::State {
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
  int width = 0, height = 0;

  State(int w, int h) : width(w), height(h) {
    check_size(w, h);
    surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
      const std::string why = cairo_status_to_string(cairo_surface_status(surface));
      cairo_surface_destroy(surface);
      fail("canvas: cannot create a {}x{} image: {}", w, h, why);
    }
    cr = cairo_create(surface);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_face(cr, font_face());
    cairo_set_font_options(cr, font_options());
  }
  ~State() {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  uint32_t* row(int y) const {
    return reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(surface) +
                                       static_cast<size_t>(y) * cairo_image_surface_get_stride(surface));
  }
  // Direct pixel access must not race cairo's pending drawing: flush before reading or writing, mark after writing.
  void begin_pixels() const { cairo_surface_flush(surface); }
  void end_pixels() const { cairo_surface_mark_dirty(surface); }
  // A context in an error state ignores every later call silently: say so where it happened instead.
  void check(const char* what) const {
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) fail("canvas: {} failed: {}", what, cairo_status_to_string(cairo_status(cr)));
  }
};

Canvas::Canvas(int width, int height, Rgb background) : state_(std::make_unique<State>(width, height)) {
  fill_rect(0, 0, width, height, background);
}

Canvas::Canvas(const io::Image& image) {
  check_size(image.width, image.height);
  if (image.channels != 1 && image.channels != 3 && image.channels != 4)
    fail("canvas: an image with {} channels (1, 3 or 4 expected)", image.channels);
  if (image.pixels.size() != image.size())
    fail("canvas: a {}x{}x{} image with {} bytes", image.width, image.height, image.channels, image.pixels.size());
  state_ = std::make_unique<State>(image.width, image.height);
  state_->begin_pixels();
  for (int y = 0; y < image.height; ++y) {
    uint32_t* out = state_->row(y);
    for (int x = 0; x < image.width; ++x) {
      Rgb c;
      if (image.channels == 1) {
        c = {image.at(y, x, 0), image.at(y, x, 0), image.at(y, x, 0)};
      } else {
        c = {image.at(y, x, 0), image.at(y, x, 1), image.at(y, x, 2)};
      }
      if (image.channels == 4) {
        // Over white, rounded: what a viewer shows for a transparent PNG on a white page.
        const int a = image.at(y, x, 3);
        auto over_white = [a](uint8_t v) { return uint8_t((v * a + 255 * (255 - a) + 127) / 255); };
        c = {over_white(c.r), over_white(c.g), over_white(c.b)};
      }
      out[x] = pack(c);
    }
  }
  state_->end_pixels();
}

Canvas::~Canvas() = default;
Canvas::Canvas(Canvas&&) noexcept = default;
Canvas& Canvas::operator=(Canvas&&) noexcept = default;

int Canvas::width() const { return state_->width; }
int Canvas::height() const { return state_->height; }

void Canvas::rect_outline(int x0, int y0, int x1, int y1, Rgb color, int line_width) {
  if (x1 < x0) std::swap(x0, x1);
  if (y1 < y0) std::swap(y0, y1);
  if (x1 == x0 || y1 == y0 || line_width < 1) return;
  // A frame filled between the outer rectangle and the inner one (even-odd), not a stroke along the middle: with
  // integer corners every edge falls on pixel boundaries, so exactly the pixels within line_width of the edge change
  // and nothing bleeds outside, for odd and even widths alike; a rectangle thinner than two widths is filled.
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_new_path(cr);
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  const int inner_w = (x1 - x0) - 2 * line_width, inner_h = (y1 - y0) - 2 * line_width;
  if (inner_w > 0 && inner_h > 0) cairo_rectangle(cr, x0 + line_width, y0 + line_width, inner_w, inner_h);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
  set_source(cr, color);
  cairo_fill(cr);
  cairo_restore(cr);
  state_->check("rect_outline");
}

void Canvas::fill_rect(double x0, double y0, double x1, double y1, Rgb color, double alpha) {
  if (!(std::isfinite(x0) && std::isfinite(y0) && std::isfinite(x1) && std::isfinite(y1))) return;
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_new_path(cr);
  x0 = clamp_coordinate(x0), x1 = clamp_coordinate(x1), y0 = clamp_coordinate(y0), y1 = clamp_coordinate(y1);
  cairo_rectangle(cr, std::min(x0, x1), std::min(y0, y1), std::abs(x1 - x0), std::abs(y1 - y0));
  set_source(cr, color, opacity(alpha));
  cairo_fill(cr);
  cairo_restore(cr);
  state_->check("fill_rect");
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb color, double line_width) {
  if (xs.size() != ys.size()) fail("polyline: {} x values for {} y values", xs.size(), ys.size());
  if (!(line_width > 0) || !std::isfinite(line_width)) return;
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_new_path(cr);
  // Round caps and joins: a lone point between two gaps still shows, as a dot (a zero-length segment).
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_width(cr, line_width);
  bool open = false;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || !std::isfinite(ys[i])) {
      open = false;
      continue;
    }
    const double x = clamp_coordinate(xs[i]), y = clamp_coordinate(ys[i]);
    if (!open) {
      cairo_move_to(cr, x, y);
      cairo_line_to(cr, x, y);
      open = true;
    } else {
      cairo_line_to(cr, x, y);
    }
  }
  set_source(cr, color);
  cairo_stroke(cr);
  cairo_restore(cr);
  state_->check("polyline");
}

void Canvas::blend_mask(const std::vector<uint8_t>& mask, Rgb color, double alpha) {
  const size_t w = static_cast<size_t>(width()), h = static_cast<size_t>(height());
  if (mask.size() != w * h) fail("blend_mask: a mask of {} bytes for a {}x{} canvas ({} expected)", mask.size(), w, h, w * h);
  const double a = opacity(alpha);
  // Per channel, one table from the canvas's value to the blended one: the arithmetic is written once and the loop
  // is a lookup per pixel.
  std::array<std::array<uint8_t, 256>, 3> blended{};
  const std::array<uint8_t, 3> target{color.r, color.g, color.b};
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) blended[c][v] = static_cast<uint8_t>(std::lround(v * (1 - a) + target[c] * a));
  state_->begin_pixels();
  for (size_t y = 0; y < h; ++y) {
    uint32_t* out = state_->row(static_cast<int>(y));
    const uint8_t* m = mask.data() + y * w;
    for (size_t x = 0; x < w; ++x) {
      if (m[x] == 0) continue;
      const Rgb p = unpack(out[x]);
      out[x] = pack({blended[0][p.r], blended[1][p.g], blended[2][p.b]});
    }
  }
  state_->end_pixels();
}

void Canvas::text(double x, double y, const std::string& utf8, double size, Rgb color, Align align, VAlign valign) {
  if (utf8.empty() || !(size > 0) || !std::isfinite(x) || !std::isfinite(y)) return;
  const std::string valid = utf8_valid(utf8);
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t te;
  cairo_font_extents_t fe;
  cairo_text_extents(cr, valid.c_str(), &te);
  cairo_font_extents(cr, &fe);
  // Anchored by the advance width and the font's ascent/descent, not the ink: texts of one size line up on one
  // baseline whatever letters they hold.
  const double dx = align == Align::left ? 0 : align == Align::center ? -te.x_advance / 2 : -te.x_advance;
  const double baseline = valign == VAlign::top      ? y + fe.ascent
                          : valign == VAlign::middle ? y + (fe.ascent - fe.descent) / 2
                                                     : y - fe.descent;
  cairo_move_to(cr, clamp_coordinate(x + dx), clamp_coordinate(baseline));
  set_source(cr, color);
  cairo_show_text(cr, valid.c_str());
  cairo_restore(cr);
  state_->check("text");
}

void Canvas::text_vertical(double x, double y, const std::string& utf8, double size, Rgb color) {
  if (!std::isfinite(x) || !std::isfinite(y)) return;
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_translate(cr, clamp_coordinate(x), clamp_coordinate(y));
  cairo_rotate(cr, -std::acos(-1.0) / 2);  // a quarter turn counter-clockwise
  text(0, 0, utf8, size, color, Align::center, VAlign::middle);
  cairo_restore(cr);
}

TextSize Canvas::measure(const std::string& utf8, double size) const {
  if (!(size > 0)) return {};
  const std::string valid = utf8_valid(utf8);
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t te;
  cairo_font_extents_t fe;
  cairo_text_extents(cr, valid.c_str(), &te);
  cairo_font_extents(cr, &fe);
  cairo_restore(cr);
  return {valid.empty() ? 0.0 : te.x_advance, fe.ascent + fe.descent};
}

std::string Canvas::fit_text(const std::string& utf8, double size, double max_width) const {
  const std::string valid = utf8_valid(utf8);
  if (measure(valid, size).width <= max_width) return valid;
  static const std::string kEllipsis = "\u2026";
  if (measure(kEllipsis, size).width > max_width) return "";
  // The longest prefix (whole code points) that fits with the ellipsis. Widths grow with the prefix (no kerning in
  // cairo's text API), so a binary search over code point boundaries finds it.
  const std::vector<size_t> cuts = utf8_boundaries(valid);  // 0, ..., size(): offsets between code points
  size_t lo = 0, hi = cuts.size() - 1;                      // cuts[lo] fits; cuts[hi] (the whole text) does not
  auto shortened = [&](size_t k) {
    std::string head = valid.substr(0, cuts[k]);
    while (!head.empty() && head.back() == ' ') head.pop_back();  // "long name…", not "long …"
    return head + kEllipsis;
  };
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    if (measure(shortened(mid), size).width <= max_width) lo = mid;
    else hi = mid;
  }
  return shortened(lo);
}

void Canvas::paste(const Canvas& other, double x, double y, double w, double h) {
  if (!(w > 0 && h > 0) || !std::isfinite(x) || !std::isfinite(y) || !std::isfinite(w) || !std::isfinite(h)) return;
  cairo_surface_t* source = other.state_->surface;
  cairo_surface_t* copy = nullptr;
  if (&other == this) {  // cairo does not read and write one surface in one operation
    copy = cairo_surface_create_similar_image(source, CAIRO_FORMAT_RGB24, width(), height());
    cairo_t* c = cairo_create(copy);
    cairo_set_source_surface(c, source, 0, 0);
    cairo_paint(c);
    cairo_destroy(c);
    source = copy;
  }
  cairo_t* cr = state_->cr;
  cairo_save(cr);
  cairo_new_path(cr);
  cairo_rectangle(cr, clamp_coordinate(x), clamp_coordinate(y), w, h);
  cairo_clip(cr);
  cairo_translate(cr, clamp_coordinate(x), clamp_coordinate(y));
  cairo_scale(cr, w / other.width(), h / other.height());
  cairo_set_source_surface(cr, source, 0, 0);
  cairo_pattern_t* pattern = cairo_get_source(cr);
  // GOOD: bilinear when enlarging, and when shrinking an average over the source pixels each target pixel covers
  // (plain bilinear would sample 4 of a 10000-px image's pixels per thumbnail pixel and alias). PAD: the edge
  // pixels are the image's own, not blended with the transparent outside.
  cairo_pattern_set_filter(pattern, CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend(pattern, CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_restore(cr);
  if (copy) cairo_surface_destroy(copy);
  state_->check("paste");
}

io::Image Canvas::to_image() const {
  io::Image image;
  image.width = width();
  image.height = height();
  image.channels = 3;
  image.pixels.resize(image.size());
  state_->begin_pixels();
  uint8_t* out = image.pixels.data();
  for (int y = 0; y < image.height; ++y) {
    const uint32_t* in = state_->row(y);
    for (int x = 0; x < image.width; ++x) {
      const Rgb c = unpack(in[x]);
      *out++ = c.r;
      *out++ = c.g;
      *out++ = c.b;
    }
  }
  return image;
}

Rgb Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width() || y >= height())
    fail("canvas: pixel ({}, {}) is outside the {}x{} canvas", x, y, width(), height());
  state_->begin_pixels();
  return unpack(state_->row(y)[x]);
}

void Canvas::write_png(const std::string& path) const { io::write_png(path, to_image()); }

}  // namespace em::draw
