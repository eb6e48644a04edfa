#include "em/draw/annotate.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/draw/legend.hpp"
#include "em/io/base64.hpp"

namespace em::draw {
namespace {

// Ultralytics' annotator scale: the line width follows the image's size, so boxes, tags and legends look alike on a
// 640-px and on a 4000-px image once both are shown at screen size.
int line_width_for(const Canvas& canvas) {
  return std::max(2, static_cast<int>(std::lround((canvas.width() + canvas.height()) / 2.0 * 0.003)));
}
double text_size_for(const Canvas& canvas) { return std::max(12.0, 5.0 * line_width_for(canvas)); }

// A pixel coordinate from a box edge, clamped to [0, limit]; NaN has none.
std::optional<int> edge(double v, int limit) {
  if (std::isnan(v)) return std::nullopt;
  return static_cast<int>(std::lround(std::clamp(v, 0.0, static_cast<double>(limit))));
}

std::string score_text(double score) { return fmt::format("{:.2f}", score); }

// A tag: the text on a band of the box's colour, placed above the box's top-left corner, inside the box when there
// is no room above, and moved left/up (then cut) so that all of it stays on the canvas.
void draw_tag(Canvas& canvas, int x0, int y0, const std::string& text, Rgb color) {
  const double size = text_size_for(canvas);
  const int pad = static_cast<int>(std::lround(size * 0.2));
  const int max_text = canvas.width() - 2 * pad;
  const std::string shown = canvas.fit_text(text, size, max_text);
  const TextSize ts = canvas.measure(shown, size);
  const int band_w = std::min(canvas.width(), static_cast<int>(std::ceil(ts.width)) + 2 * pad);
  const int band_h = static_cast<int>(std::ceil(ts.height)) + 2 * pad;
  int top = y0 - band_h >= 0 ? y0 - band_h : y0;
  top = std::max(0, std::min(top, canvas.height() - band_h));
  const int left = std::max(0, std::min(x0, canvas.width() - band_w));
  canvas.fill_rect(left, top, left + band_w, top + band_h, color);
  canvas.text(left + pad, top + pad, shown, size, text_color_on(color));
}

// The image scaled for a picture beside a panel: at most kScoresMaxSide on its long side (a 10000-px image),
// and a thumbnail-sized one (a 28x28 Fashion-MNIST image) enlarged by a whole factor so it can be seen.
constexpr int kScoresMaxSide = 512, kScoresSmallSide = 128, kScoresEnlargedSide = 256;
std::pair<int, int> scores_image_size(int w, int h) {
  const int long_side = std::max(w, h);
  double f = 1;
  if (long_side > kScoresMaxSide) f = static_cast<double>(kScoresMaxSide) / long_side;
  else if (long_side < kScoresSmallSide) f = std::floor(static_cast<double>(kScoresEnlargedSide) / long_side);
  return {std::max(1, static_cast<int>(std::lround(w * f))), std::max(1, static_cast<int>(std::lround(h * f)))};
}

// ---- draw_prediction: the platform's response for one instance (SPEC section 7), checked field by field.

const io::Json& field(const io::Json& entry, size_t i, const char* name) {
  if (!entry.contains(name)) fail("response[{}]: missing field \"{}\"", i, name);
  return entry[name];
}

std::string label_of(const io::Json& entry, size_t i) {
  const io::Json& label = field(entry, i, "label");
  if (!label.is_string()) fail("response[{}].label: expected a string, got {}", i, label.dump());
  return label.get<std::string>();
}

std::optional<double> score_of(const io::Json& entry, size_t i, bool may_be_null) {
  const io::Json& score = field(entry, i, "score");
  if (score.is_null() && may_be_null) return std::nullopt;
  if (!score.is_number()) fail("response[{}].score: expected a number, got {}", i, score.dump());
  return score.get<double>();
}

// Label -> id: the model's id2label order first, labels it does not know after it, in order of appearance.
class LabelIds {
 public:
  explicit LabelIds(const std::vector<std::string>& labels) : names_(labels) {
    for (size_t i = 0; i < names_.size(); ++i) ids_.emplace(names_[i], static_cast<int64_t>(i));
  }
  int64_t operator()(const std::string& label) {
    auto [it, fresh] = ids_.emplace(label, static_cast<int64_t>(names_.size()));
    if (fresh) names_.push_back(label);
    return it->second;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, int64_t> ids_;  // emplace keeps the first id of a label listed twice
};

Canvas draw_classification(const io::Image& image, const io::Json& response) {
  std::vector<LabelScore> scores;
  for (size_t i = 0; i < response.size(); ++i) scores.push_back({label_of(response[i], i), *score_of(response[i], i, false)});
  return draw_scores(image, scores);
}

Canvas draw_detection(const io::Image& image, const io::Json& response, LabelIds& ids) {
  std::vector<LabeledBox> boxes;
  for (size_t i = 0; i < response.size(); ++i) {
    const io::Json& entry = response[i];
    LabeledBox box;
    box.label = label_of(entry, i);
    box.class_index = ids(box.label);
    box.score = score_of(entry, i, false);
    const io::Json& b = field(entry, i, "box");
    double* corners[] = {&box.xmin, &box.ymin, &box.xmax, &box.ymax};
    const char* names[] = {"xmin", "ymin", "xmax", "ymax"};
    for (int k = 0; k < 4; ++k) {
      if (!b.is_object() || !b.contains(names[k]) || !b[names[k]].is_number())
        fail("response[{}].box: expected an object with numbers xmin, ymin, xmax, ymax, got {}", i, b.dump());
      *corners[k] = b[names[k]].get<double>();
    }
    boxes.push_back(box);
  }
  Canvas canvas(image);
  draw_boxes(canvas, boxes);
  return canvas;
}

Canvas draw_segmentation(const io::Image& image, const io::Json& response, LabelIds& ids) {
  constexpr int64_t kNone = -1;
  LabelMap map{image.width, image.height, std::vector<int64_t>(static_cast<size_t>(image.width) * image.height, kNone)};
  for (size_t i = 0; i < response.size(); ++i) {
    const io::Json& entry = response[i];
    const int64_t id = ids(label_of(entry, i));
    score_of(entry, i, true);
    const io::Json& mask_text = field(entry, i, "mask");
    if (!mask_text.is_string()) fail("response[{}].mask: expected a base64 PNG string, got {}", i, mask_text.dump());
    const std::string what = fmt::format("response[{}].mask", i);
    const io::Image mask = io::decode_image(io::base64_decode(mask_text.get<std::string>(), what), what, 1);
    if (mask.width != image.width || mask.height != image.height)
      fail("response[{}].mask: {}x{} pixels for a {}x{} image", i, mask.width, mask.height, image.width, image.height);
    for (size_t p = 0; p < mask.pixels.size(); ++p)
      if (mask.pixels[p] != 0) map.labels[p] = id;
  }
  Canvas canvas(image);
  draw_label_map(canvas, map, ids.names(), kNone);
  return canvas;
}

}  // namespace

void draw_boxes(Canvas& canvas, const std::vector<LabeledBox>& boxes) {
  struct Placed {
    int x0, y0;
    std::string tag;
    Rgb color;
  };
  std::vector<Placed> tags;
  const int lw = line_width_for(canvas);
  for (const auto& b : boxes) {
    const auto x0 = edge(b.xmin, canvas.width()), x1 = edge(b.xmax, canvas.width());
    const auto y0 = edge(b.ymin, canvas.height()), y1 = edge(b.ymax, canvas.height());
    if (!x0 || !x1 || !y0 || !y1 || *x1 <= *x0 || *y1 <= *y0) continue;
    const Rgb color = class_color(b.class_index);
    canvas.rect_outline(*x0, *y0, *x1, *y1, color, lw);
    tags.push_back({*x0, *y0, b.score ? b.label + " " + score_text(*b.score) : b.label, color});
  }
  // Tags after every outline: no other box's line crosses a tag's text.
  for (const auto& t : tags) draw_tag(canvas, t.x0, t.y0, t.tag, t.color);
}

void draw_label_map(Canvas& canvas, const LabelMap& map, const std::vector<std::string>& names, int64_t ignore,
                    double alpha, bool legend) {
  const size_t pixels = static_cast<size_t>(canvas.width()) * canvas.height();
  if (map.width != canvas.width() || map.height != canvas.height() || map.labels.size() != pixels)
    fail("label map: {}x{} with {} labels for a {}x{} canvas", map.width, map.height, map.labels.size(),
         canvas.width(), canvas.height());
  std::set<int64_t> present;
  std::vector<bool> seen_small(256);  // the common case (ids < 256) without a set lookup per pixel
  for (size_t p = 0; p < pixels; ++p) {
    const int64_t v = map.labels[p];
    if (v == ignore) continue;
    if (v < 0) fail("label map: label {} at pixel ({}, {}) (ids are >= 0; the ignore id is {})", v,
                    p % map.width, p / map.width, ignore);
    if (v < 256) {
      if (!seen_small[static_cast<size_t>(v)]) seen_small[static_cast<size_t>(v)] = true, present.insert(v);
    } else {
      present.insert(v);
    }
  }
  std::vector<uint8_t> mask(pixels);
  std::vector<LegendEntry> entries;
  for (int64_t id : present) {
    for (size_t p = 0; p < pixels; ++p) mask[p] = map.labels[p] == id;
    canvas.blend_mask(mask, class_color(id), alpha);
    const auto index = static_cast<size_t>(id);
    entries.push_back({index < names.size() ? names[index] : fmt::format("class {}", id), class_color(id)});
  }
  if (!legend || entries.empty()) return;
  const double margin = line_width_for(canvas);
  LegendStyle style;
  style.text_size = text_size_for(canvas);
  style.max_width = std::min(canvas.width() - 2 * margin, style.text_size * 16);
  style.max_height = canvas.height() - 2 * margin;
  style.backdrop = true;
  draw_legend(canvas, margin, margin, entries, style);
}

Canvas draw_scores(const io::Image& image, const std::vector<LabelScore>& scores) {
  constexpr double kText = 14, kRow = 26, kMargin = 12, kBarMax = 160, kTextWidth = 240;
  const auto [iw, ih] = scores_image_size(image.width, image.height);
  const int panel_w = static_cast<int>(kMargin + kBarMax + 8 + kTextWidth + kMargin);
  const int rows = std::max<int>(1, static_cast<int>(scores.size()));
  const int height = std::max(ih, static_cast<int>(2 * kMargin + rows * kRow));
  Canvas out(iw + panel_w, height, kWhite);
  const Canvas picture(image);
  out.paste(picture, 0, 0, iw, ih);
  const double x = iw + kMargin;
  if (scores.empty()) out.text(x, kMargin, "no scores", kText, Rgb{90, 90, 90});
  for (size_t i = 0; i < scores.size(); ++i) {
    const double top = kMargin + i * kRow, middle = top + kRow / 2;
    const double s = std::isfinite(scores[i].score) ? std::clamp(scores[i].score, 0.0, 1.0) : 0.0;
    out.fill_rect(x, top + 4, x + kBarMax, top + kRow - 4, Rgb{235, 235, 235});  // the track: what 1.0 would be
    out.fill_rect(x, top + 4, x + kBarMax * s, top + kRow - 4, class_color(static_cast<int64_t>(i)));
    const std::string value = fmt::format("  {:.3f}", scores[i].score);
    const double label_room = kTextWidth - out.measure(value, kText).width;
    out.text(x + kBarMax + 8, middle, out.fit_text(scores[i].label, kText, label_room) + value, kText, kBlack,
             Align::left, VAlign::middle);
  }
  return out;
}

Canvas with_caption(const Canvas& canvas, const std::string& utf8, double size) {
  const double pad = std::round(size * 0.3);
  const int band = static_cast<int>(std::ceil(canvas.measure("Ag", size).height + 2 * pad));
  Canvas out(canvas.width(), canvas.height() + band, kWhite);
  out.paste(canvas, 0, 0, canvas.width(), canvas.height());
  out.text(canvas.width() / 2.0, canvas.height() + pad, out.fit_text(utf8, size, canvas.width() - 2 * pad), size,
           kBlack, Align::center);
  return out;
}

Canvas draw_prediction(const io::Image& image, Algo algo, const io::Json& response,
                       const std::vector<std::string>& labels) {
  if (!response.is_array())
    fail("response: expected the array of predictions for one instance, got {}", response.type_name());
  for (size_t i = 0; i < response.size(); ++i)
    if (!response[i].is_object()) fail("response[{}]: expected an object, got {}", i, response[i].dump());
  LabelIds ids(labels);
  switch (algo) {
    case Algo::classification: return draw_classification(image, response);
    case Algo::detection: return draw_detection(image, response, ids);
    case Algo::segmentation: return draw_segmentation(image, response, ids);
  }
  fail("draw_prediction: unknown algorithm {}", static_cast<unsigned>(algo));
}

Canvas side_by_side(const std::vector<const Canvas*>& panels, const std::vector<std::string>& titles) {
  if (panels.empty()) fail("side_by_side: no panels");
  if (!titles.empty() && titles.size() != panels.size())
    fail("side_by_side: {} titles for {} panels", titles.size(), panels.size());
  constexpr double kTitle = 16;
  constexpr int kGap = 8, kTitleBand = 28;
  int height = 0;
  for (const Canvas* p : panels) {
    if (!p) fail("side_by_side: a panel is null");
    height = std::max(height, p->height());
  }
  // Every panel at the tallest one's height, aspect kept (truth and prediction are the same size anyway).
  std::vector<int> widths;
  int width = kGap;
  for (const Canvas* p : panels) {
    widths.push_back(std::max(1, static_cast<int>(std::lround(static_cast<double>(p->width()) * height / p->height()))));
    width += widths.back() + kGap;
  }
  const int top = titles.empty() ? kGap : kTitleBand;
  Canvas out(width, top + height + kGap, kWhite);
  int x = kGap;
  for (size_t i = 0; i < panels.size(); ++i) {
    if (!titles.empty())
      out.text(x + widths[i] / 2.0, top / 2.0, out.fit_text(titles[i], kTitle, widths[i]), kTitle, kBlack,
               Align::center, VAlign::middle);
    out.paste(*panels[i], x, top, widths[i], height);
    x += widths[i] + kGap;
  }
  return out;
}

}  // namespace em::draw
