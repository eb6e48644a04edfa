#include "em/draw/preview.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/draw/charts.hpp"
#include "em/draw/legend.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/data/coco_file.hpp"
#include "em/data/segmentation_dataset.hpp"

namespace em::draw {
namespace fs = std::filesystem;

void PreviewOptions::validate() const {
  if (out_dir == "-") usage_fail("--preview: give a folder for the pictures; stdout carries the report");
  if (images_per_sheet < 1 || images_per_sheet > 256)
    usage_fail("--preview_images {}: expected 1 to 256 images per contact sheet", images_per_sheet);
  if (cell_size != 0 && (cell_size < 32 || cell_size > 1024))
    usage_fail("preview cell size {}: expected 32 to 1024 px (0 = the algorithm's)", cell_size);
}

namespace {

constexpr const char* kSplits[] = {"train", "validation", "test"};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The size of `width` x `height` with its longer side scaled to `cell` px, aspect kept.
std::pair<int, int> tile_size(int width, int height, int cell) {
  const double f = static_cast<double>(cell) / std::max(width, height);
  return {std::max(1, static_cast<int>(std::lround(width * f))), std::max(1, static_cast<int>(std::lround(height * f)))};
}

Canvas scaled_tile(const io::Image& image, int cell) {
  const auto [w, h] = tile_size(image.width, image.height, cell);
  Canvas tile(w, h);
  tile.paste(Canvas(image), 0, 0, w, h);
  return tile;
}

// ------------------------------------------------------------------------------------------ contact sheets

// What one split's contact sheet shows.
struct Sheet {
  std::string dir;          // DIR/train, for the title
  size_t listed = 0;        // images the split lists
  size_t undecodable = 0;   // of those tried for the sheet, the ones that do not decode (the report lists them)
  std::vector<Canvas> tiles;
  std::vector<std::string> captions;
  std::vector<LegendEntry> legend;  // segmentation: the classes in the seg maps shown, in id order
  const char* order = "";           // how the images were picked, when not simply the first ones
};

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// Classification: the first image of each label folder, then the second of each, ... (label order, then the
// listing's sorted order): reproducible, and every label shows even when a split has thousands per label.
std::optional<Sheet> classification_sheet(const data::ValidationReport& report, const std::string& split,
                                          const PreviewOptions& options) {
  const data::SplitListing listing = data::list_classification_split(report.dir, split);
  if (!listing.exists || listing.num_images() == 0) return std::nullopt;
  Sheet sheet;
  sheet.dir = listing.dir, sheet.listed = listing.num_images();
  sheet.order = ", one per label in turn";
  const auto wanted = static_cast<size_t>(options.images_per_sheet);
  for (size_t rank = 0; sheet.tiles.size() < wanted; ++rank) {
    bool any = false;
    for (const auto& folder : listing.folders) {
      if (rank >= folder.images.size() || sheet.tiles.size() >= wanted) continue;
      any = true;
      const std::string& path = folder.images[rank];
      try {
        sheet.tiles.push_back(scaled_tile(io::read_image(path, 3), options.cell_size));
      } catch (const Error&) {
        ++sheet.undecodable;
        continue;
      }
      sheet.captions.push_back(folder.name + " \u2014 " + file_name(path));
    }
    if (!any) break;
  }
  return sheet;
}

// Segmentation: the split file's first entries whose image and seg map both decode.
std::optional<Sheet> segmentation_sheet(const data::ValidationReport& report, const std::string& split,
                                        const PreviewOptions& options) {
  const data::SegmentationSplitListing listing = data::list_segmentation_split(report.dir, split);
  if (!listing.exists || listing.entries.empty()) return std::nullopt;
  // The names the report read from id2label.json (none when it could not be read).
  const std::vector<std::string> names = report.summary.value("labels", std::vector<std::string>{});
  Sheet sheet;
  sheet.dir = listing.dir, sheet.listed = static_cast<size_t>(listing.listed);
  std::array<bool, 256> shown{};
  for (const auto& entry : listing.entries) {
    if (sheet.tiles.size() >= static_cast<size_t>(options.images_per_sheet)) break;
    io::Image image, map;
    try {
      image = io::read_image(entry.image, 3);
      map = data::read_label_map(entry.seg_map);
    } catch (const Error&) {
      ++sheet.undecodable;
      continue;
    }
    sheet.tiles.push_back(label_map_tile(image, map, options.cell_size));
    sheet.captions.push_back(file_name(entry.image));
    for (uint8_t v : map.pixels) shown[v] = true;
  }
  for (size_t id = 0; id < shown.size(); ++id) {
    if (!shown[id] || id == static_cast<size_t>(data::kIgnoreLabel)) continue;
    // The id beside the name: a shifted id2label shows as a name on the wrong colour.
    const std::string name = id < names.size() ? names[id] : "not in id2label.json";
    sheet.legend.push_back({fmt::format("{} {}", id, name), class_color(static_cast<int64_t>(id))});
  }
  return sheet;
}

// Detection: the annotation file's first images that decode, with their boxes (crowd regions too, tagged so).
// Colours follow train's label order (the model's), names are the split's own: a category that another split calls
// differently shows its own name in train's colour.
std::optional<Sheet> detection_sheet(const data::ValidationReport& report, const std::string& split,
                                     const PreviewOptions& options) {
  const data::CocoSplit coco = data::read_coco_split(report.dir, split);
  if (!coco.exists || coco.images.empty()) return std::nullopt;
  std::map<int64_t, int64_t> label_of;  // category id -> colour index
  if (auto it = report.summary.find("categories"); it != report.summary.end())
    for (const auto& c : *it) label_of.emplace(c.at("id").get<int64_t>(), c.at("label").get<int64_t>());
  std::map<int64_t, std::string> name_of;
  for (const auto& c : coco.categories) {
    name_of[c.id] = c.name;
    label_of.emplace(c.id, static_cast<int64_t>(label_of.size()));  // not a train category: a colour after train's
  }
  Sheet sheet;
  sheet.dir = coco.dir, sheet.listed = coco.images.size();
  for (const auto& record : coco.images) {
    if (sheet.tiles.size() >= static_cast<size_t>(options.images_per_sheet)) break;
    io::Image image;
    try {
      image = io::read_image(record.path, 3);
    } catch (const Error&) {
      ++sheet.undecodable;
      continue;
    }
    std::vector<LabeledBox> boxes;
    for (const auto& b : record.boxes) {
      LabeledBox box;
      box.label = name_of[b.category_id] + (b.iscrowd ? " (crowd)" : "");
      box.class_index = label_of[b.category_id];
      // COCO's bbox is [x, y, w, h].
      box.xmin = b.bbox[0], box.ymin = b.bbox[1], box.xmax = b.bbox[0] + b.bbox[2], box.ymax = b.bbox[1] + b.bbox[3];
      boxes.push_back(std::move(box));
    }
    sheet.tiles.push_back(box_tile(image, boxes, options.cell_size));
    sheet.captions.push_back(record.file_name);
  }
  return sheet;
}

// The sheet as one picture: a grid of about as many columns as rows, the legend (if any) to its right.
Canvas draw_sheet(const std::string& split, const Sheet& sheet, int cell_size) {
  std::vector<const Canvas*> tiles;
  for (const auto& t : sheet.tiles) tiles.push_back(&t);
  const int columns = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(tiles.size())))));
  // The counts first: a long DIR is what fit_text cuts.
  std::string title = fmt::format("{}: {} of {} images{}", split, sheet.tiles.size(), sheet.listed, sheet.order);
  if (sheet.undecodable > 0) title += fmt::format(" ({} left out: not decodable)", sheet.undecodable);
  title += " \u2014 " + sheet.dir;
  Canvas grid_canvas = grid(tiles, sheet.captions, columns, cell_size, title);
  if (sheet.legend.empty()) return grid_canvas;
  LegendStyle style;
  style.text_size = 13;
  style.max_width = 260;
  style.max_height = std::max(200, grid_canvas.height() - 40);
  const TextSize size = legend_size(grid_canvas, sheet.legend, style);
  constexpr int kTop = 40, kMargin = 8;  // below the grid's title band
  Canvas out(grid_canvas.width() + static_cast<int>(std::ceil(size.width)) + kMargin,
             std::max(grid_canvas.height(), kTop + static_cast<int>(std::ceil(size.height)) + kMargin), kWhite);
  out.paste(grid_canvas, 0, 0, grid_canvas.width(), grid_canvas.height());
  draw_legend(out, grid_canvas.width(), kTop, sheet.legend, style);
  return out;
}

// ------------------------------------------------------------------------------------------ instances per class

// What the report counted per class and split, as bars.
struct ClassCounts {
  std::vector<std::string> categories;
  std::vector<Series> series;
  std::string title, y_label;
};

// `first` (in order), then the keys of each split's summary[field] that it lacks.
std::vector<std::string> categories_of(std::vector<std::string> first, const io::Json& splits, const char* field) {
  std::set<std::string> seen(first.begin(), first.end());
  for (const char* split : kSplits)
    if (splits.contains(split) && splits[split].contains(field))
      for (const auto& [name, value] : splits[split][field].items())
        if (seen.insert(name).second) first.push_back(name);
  return first;
}

// One series per split in the summary: summary.splits[split][field][category], NaN (no bar) where it is absent.
std::vector<Series> series_of(const io::Json& splits, const char* field, const std::vector<std::string>& categories) {
  std::vector<Series> out;
  for (const char* split : kSplits) {
    if (!splits.contains(split)) continue;
    Series s{split, {}};
    const io::Json counts = splits[split].value(field, io::Json::object());
    for (const auto& c : categories) s.values.push_back(counts.contains(c) && counts[c].is_number() ? counts[c].get<double>() : kNaN);
    out.push_back(std::move(s));
  }
  return out;
}

ClassCounts classification_counts(const io::Json& summary) {
  const io::Json& splits = summary["splits"];
  ClassCounts c;
  c.categories = categories_of(summary.value("labels", std::vector<std::string>{}), splits, "per_label");
  c.series = series_of(splits, "per_label", c.categories);
  c.title = "images per label (images that decode)";
  c.y_label = "images";
  return c;
}

ClassCounts segmentation_counts(const io::Json& summary) {
  const io::Json& splits = summary["splits"];
  ClassCounts c;
  c.categories = categories_of(summary.value("labels", std::vector<std::string>{}), splits, "pixel_frequency");
  c.series = series_of(splits, "pixel_frequency", c.categories);
  // In percent: the y axis reaches at least 1, and a class's share is rarely a tenth of that.
  for (auto& s : c.series)
    for (double& v : s.values) v *= 100;
  c.title = "pixels per class (usable entries)";
  c.y_label = "% of the split's pixels";
  return c;
}

ClassCounts detection_counts(const io::Json& summary) {
  const io::Json& splits = summary["splits"];
  std::vector<std::string> train_names;
  if (auto it = summary.find("categories"); it != summary.end())
    for (const auto& cat : *it) train_names.push_back(cat.at("name").get<std::string>());
  ClassCounts c;
  c.categories = categories_of(train_names, splits, "boxes_per_class");
  c.series = series_of(splits, "boxes_per_class", c.categories);
  c.title = "boxes per category (crowd regions apart)";
  c.y_label = "boxes";
  return c;
}

// Each algorithm's pieces, by the Algo of core/algo.cpp's table. The cell sizes: a label caption needs little room, a
// detection tile the most (a dozen box tags in 12-px text over a 640-px photo).
struct PreviewRow {
  Algo algo;
  int cell_size;
  std::optional<Sheet> (*sheet)(const data::ValidationReport&, const std::string& split, const PreviewOptions&);
  ClassCounts (*counts)(const io::Json& summary);
};
constexpr PreviewRow kPreviews[] = {
    {Algo::classification, 192, classification_sheet, classification_counts},
    {Algo::segmentation, 256, segmentation_sheet, segmentation_counts},
    {Algo::detection, 384, detection_sheet, detection_counts},
};
static_assert(one_row_per_algo(kPreviews), "kPreviews: one row per algorithm, in enum order");

}  // namespace

Canvas box_tile(const io::Image& image, const std::vector<LabeledBox>& boxes, int cell_size) {
  Canvas tile = scaled_tile(image, cell_size);
  const double sx = static_cast<double>(tile.width()) / image.width;
  const double sy = static_cast<double>(tile.height()) / image.height;
  std::vector<LabeledBox> scaled = boxes;
  for (auto& b : scaled) b.xmin *= sx, b.xmax *= sx, b.ymin *= sy, b.ymax *= sy;
  draw_boxes(tile, scaled);
  return tile;
}

Canvas label_map_tile(const io::Image& image, const io::Image& label_map, int cell_size) {
  if (label_map.channels != 1) fail("label_map_tile: a label map with {} channels (1 expected)", label_map.channels);
  Canvas tile = scaled_tile(image, cell_size);
  const int w = tile.width(), h = tile.height();
  // Tile pixel -> the image pixel under its centre -> the map's value there (ignore beyond the map).
  std::vector<int> columns(static_cast<size_t>(w));
  for (int x = 0; x < w; ++x) columns[static_cast<size_t>(x)] = static_cast<int>((x + 0.5) * image.width / w);
  LabelMap map{w, h, std::vector<int64_t>(static_cast<size_t>(w) * static_cast<size_t>(h), data::kIgnoreLabel)};
  for (int y = 0; y < h; ++y) {
    const int iy = static_cast<int>((y + 0.5) * image.height / h);
    if (iy >= label_map.height) continue;
    for (int x = 0; x < w; ++x) {
      const int ix = columns[static_cast<size_t>(x)];
      if (ix < label_map.width) map.labels[static_cast<size_t>(y) * w + x] = label_map.at(iy, ix, 0);
    }
  }
  draw_label_map(tile, map, {}, data::kIgnoreLabel, 0.5, /*legend=*/false);
  return tile;
}

std::vector<std::string> write_dataset_preview(const data::ValidationReport& report, const PreviewOptions& options) {
  options.validate();
  // No splits: the folder is missing or has another algorithm's layout; the report says which.
  if (options.out_dir.empty() || !report.summary.contains("splits")) return {};
  const PreviewRow& row = kPreviews[index_of(parse_algo(report.algo))];
  PreviewOptions o = options;
  if (o.cell_size == 0) o.cell_size = row.cell_size;
  const fs::path out(options.out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out, ec))
    fail_at(options.out_dir, "cannot create the preview folder ({})", ec ? ec.message() : "it is a file");
  std::vector<std::string> written;
  auto write = [&](const Canvas& picture, const std::string& name) {
    const std::string path = (out / name).string();
    picture.write_png(path);
    written.push_back(path);
  };
  const io::Json& splits = report.summary["splits"];
  for (const char* split : kSplits) {
    if (!splits.contains(split)) continue;
    const std::optional<Sheet> sheet = row.sheet(report, split, o);
    if (!sheet) {
      log::info("{}/{}: no contact sheet: the split lists no images that can be read (the report says why)",
                report.dir, split);
      continue;
    }
    write(draw_sheet(split, *sheet, o.cell_size), std::string(split) + ".png");
  }
  const ClassCounts counts = row.counts(report.summary);
  if (!counts.categories.empty() && !counts.series.empty())
    write(bar_chart(counts.categories, counts.series, counts.title, counts.y_label), "instances_per_class.png");
  return written;
}

}  // namespace em::draw
