// Annotations drawn on images: boxes with "label score" tags, mask overlays with a legend of the classes present,
// top-k score bars, captions. One drawing per kind, shared by em-predict --draw (from the response JSON),
// em-eval --plots (truth | prediction) and em-validate --preview (a dataset's own annotations).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "em/core/algo.hpp"
#include "em/draw/canvas.hpp"
#include "em/io/image.hpp"
#include "em/io/json.hpp"

namespace em::draw {

// A box in the canvas's pixels (xmax/ymax exclusive as in COCO's x+w); class_index picks the colour.
struct LabeledBox {
  std::string label;
  int64_t class_index = 0;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
  std::optional<double> score;  // tag "label 0.93" when set, "label" otherwise
};
// Outlines (line width from the canvas size, >= 2) in class_color(class_index); each tag is a filled band in the
// box's colour with text_color_on() text, placed above the box or inside it when there is no room above, and
// shifted/cut (fit_text) so it stays inside the canvas. Boxes are clamped to the canvas; empty ones are skipped.
void draw_boxes(Canvas& canvas, const std::vector<LabeledBox>& boxes);

// A per-pixel label map the canvas's size (row-major); `ignore` pixels (e.g. 255) are left as they are.
struct LabelMap {
  int width = 0, height = 0;
  std::vector<int64_t> labels;
};
// Blends class_color(label) with weight alpha into each labelled pixel (Canvas::blend_mask: exactly those pixels),
// then, when legend is true, a legend box (colour swatch + name, for the classes present, in id order) in the
// top-left corner. names[id] names class id ("class N" beyond names).
void draw_label_map(Canvas& canvas, const LabelMap& map, const std::vector<std::string>& names, int64_t ignore = 255,
                    double alpha = 0.5, bool legend = true);

struct LabelScore {
  std::string label;
  double score = 0;
};
// The image with a panel to its right: one horizontal bar per entry (length = score in [0, 1], class_color of its
// rank), "label  0.931" beside it. The panel is at least as tall as the bars need; the image is scaled down to at
// most 512 px on its long side, so a 10000-px image gives a readable picture, and one under 128 px (a 28x28
// Fashion-MNIST image) is enlarged by a whole factor to about 256 px, so it can be seen.
Canvas draw_scores(const io::Image& image, const std::vector<LabelScore>& scores);

// A caption band of `size` px text added under the canvas's picture (classification labels in a contact sheet).
Canvas with_caption(const Canvas& canvas, const std::string& utf8, double size = 14);

// What em-predict --draw writes for one instance: its image with the platform's response for it (SPEC section 7:
// classification [{score,label}], detection [{score,label,box}], segmentation [{score,label,mask(base64 PNG)}])
// drawn as above. `labels` is the model's id2label in id order: the colour of a label is that of its id (labels not
// in the list get ids after it). Throws em::Error("response...: ...") on a response of the wrong shape (the message
// names the entry and field: "response[2].box: ..."), a segmentation mask that does not decode or is not the
// image's size.
Canvas draw_prediction(const io::Image& image, Algo algo, const io::Json& response,
                       const std::vector<std::string>& labels);

// Side by side with a title over each (truth | prediction), same height; for em-eval --plots' segmentation samples.
Canvas side_by_side(const std::vector<const Canvas*>& panels, const std::vector<std::string>& titles);

}  // namespace em::draw
