// em-validate --preview: a dataset's own annotations drawn as the em::data readers read them (a contact sheet per
// split, instances per class as bars), so that a wrong category mapping, swapped x/y or a shifted mask shows at a glance.
#pragma once
#include <string>
#include <vector>

#include "em/data/validate.hpp"
#include "em/draw/annotate.hpp"
#include "em/draw/canvas.hpp"
#include "em/io/image.hpp"

namespace em::draw {

struct PreviewOptions {
  std::string out_dir;        // the folder the pictures go to (created); "" = no preview
  int images_per_sheet = 16;  // per split: the first N images that decode, in the split's order
  // px: a tile's longer side in a contact sheet (images are scaled up or down to it); 0 = the algorithm's
  // (classification 192, segmentation 256, detection 384).
  int cell_size = 0;
  // Throws em::UsageError for out_dir "-" (stdout carries the report), images_per_sheet outside 1..256 and
  // cell_size other than 0 outside 32..1024.
  void validate() const;
};

// Writes into options.out_dir (created), from the dataset report.dir as the em::data readers list it:
//   <split>.png              per split that lists images (train, validation, test): a grid of its first
//                            images_per_sheet images that decode, annotations drawn (classification: "label — file"
//                            captions, segmentation: the seg map blended in class colours + one legend of the classes
//                            shown, detection: the boxes in category colours with category names)
//   instances_per_class.png  bars per class, one series per split, of what report.summary counts (classification:
//                            images per label, segmentation: % of the split's pixels, detection: boxes)
// Images or seg maps that do not decode are left out (the report lists them); a split that cannot be listed (missing
// folder or split file, invalid JSON, nothing listed) gets no sheet, and a report with no splits (a missing folder,
// another algorithm's layout) gets no pictures. Returns the paths written, in writing order; throws em::Error when a
// picture cannot be written.
std::vector<std::string> write_dataset_preview(const data::ValidationReport& report, const PreviewOptions& options);

// One tile of a contact sheet: `image` scaled (aspect kept) so that its longer side is cell_size px, then its
// annotations drawn at the tile's scale (crisp lines and readable tags whatever the image's size).
// Boxes in the image's pixels (xmax = x + w).
Canvas box_tile(const io::Image& image, const std::vector<LabeledBox>& boxes, int cell_size);
// A seg map (1 channel, label ids, 255 = ignore) blended in class colours, without a legend (the sheet has one).
// Tile pixels take the map's value at the image pixel they show (nearest), so a map of another size than its image
// is drawn from the top-left corner at the image's scale: its misalignment shows instead of being stretched away.
Canvas label_map_tile(const io::Image& image, const io::Image& label_map, int cell_size);

}  // namespace em::draw
