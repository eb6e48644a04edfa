// The semantic-segmentation layout (docs/datasets.md): DIR/{split}/{split}.json lists {"image", "seg_map"} paths
// relative to the split folder, DIR/resources/id2label.json names the label ids. A fast parse (JSON + file existence,
// no decoding) for training and evaluation, the sample reader they share, and em-validate's full check (every file
// decoded).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "em/data/validate.hpp"
#include "em/io/image.hpp"

namespace em::data {

// The pixel value of a seg map that no loss or metric counts (HF's semantic_loss_ignore_index, evaluate's default).
constexpr int kIgnoreLabel = 255;

struct SegmentationEntry {
  std::string image;        // full path (split folder / "image")
  std::string seg_map;      // full path (split folder / "seg_map")
  std::string seg_map_rel;  // "annotations/0001.png" as listed: predicted label maps are written under this name
  int64_t entry = 0;        // index in the split file (errors name it)
};

// What one split's file lists, before any decoding (shared by scan() and validate_segmentation()).
struct SegmentationSplitListing {
  std::string dir;         // DIR/train
  std::string split_file;  // the file read: DIR/train/train.json (test: test.json, or the misspelt train.json)
  bool exists = false;     // the split folder exists
  int64_t listed = 0;      // entries in the file, usable or not
  std::vector<SegmentationEntry> entries;  // the usable ones, in file order
  std::vector<Problem> problems;  // invalid JSON (line, column, entry), an entry that is not an object, a missing or
                                  // non-string field, an absolute or escaping path, a file that does not exist
  std::vector<Problem> warnings;  // the accepted misspelt test/train.json, an image listed twice
};

// Reads DIR/split/split.json (for "test" also the misspelt test/train.json, with a warning). A missing split folder
// gives exists = false and no problem; a folder without its file is a problem.
SegmentationSplitListing list_segmentation_split(const std::string& dir, const std::string& split);

// DIR/resources/id2label.json, else the misspelt id2lable.json (`misspelt` set), else "" (not found).
struct Id2LabelLocation {
  std::filesystem::path path;
  bool misspelt = false;
};
Id2LabelLocation find_id2label(const std::filesystem::path& dataset_dir);

// Class names by id from an id2label.json ({"0": "sky", ...}). The class count is the largest id + 1; ids
// without a name are named by their number (with a warning). Throws em::Error for a non-object, a key that is not a
// non-negative integer, or a value that is not a string.
std::vector<std::string> read_id2label(const std::filesystem::path& path);

struct SegmentationDataset {
  std::string dir;
  std::vector<std::string> labels;  // id2label by id: the valid pixel values are 0..labels.size()-1 and 255
  std::vector<SegmentationEntry> train, validation, test;

  // Throws em::Error naming the file for the first problem list_segmentation_split() finds (em-validate lists them
  // all), a missing DIR, train split or id2label.json, a split that lists nothing, and a missing validation split
  // when required. Warns about the accepted misspelt names (docs/datasets.md). Nothing is decoded.
  static SegmentationDataset scan(const std::string& dir, bool require_validation = true);

  // "train" / "validation" / "test"; throws em::Error when that split is absent, UsageError for another name.
  const std::vector<SegmentationEntry>& split(const std::string& name) const;
};

// A label map: a single-channel 8-bit image of label ids. Throws em::Error naming the file when it does not decode,
// has several channels (an RGB or palette PNG, with a hint on converting) or 16 bits per pixel (which 8-bit
// decoding would silently divide by 256).
io::Image read_label_map(const std::string& path);

// One training/evaluation sample, decoded and checked: the image as RGB, its label map the same size.
struct SegmentationSample {
  io::Image image;      // 3 channels
  io::Image label_map;  // 1 channel, values in 0..num_labels-1 or 255
};
// Throws em::Error naming the file: undecodable image or map, a map of another size than its image, pixel values that
// are neither a label id (< num_labels) nor 255 (the values are listed). reduce_labels (a model whose processor says
// do_reduce_labels): the map holds 0 (background) and the ids + 1, so 0..num_labels and 255 are valid, and the map
// comes back reduced (reduce_label_map).
SegmentationSample read_segmentation_sample(const SegmentationEntry& entry, int64_t num_labels,
                                            bool reduce_labels = false);
// HF's do_reduce_labels (SegformerImageProcessor.reduce_label, evaluate's mean_iou reduce_labels): 0 becomes 255
// (ignored), every other value drops by one, and 254 (what 255 became) is 255 again.
void reduce_label_map(io::Image& label_map);

// The pixel values of `label_map` that are neither < num_labels nor 255, ascending ("" check = empty).
std::vector<int> unknown_label_values(const io::Image& label_map, int64_t num_labels);

// Checks every entry of DIR/{train,validation,test}: the structure problems of list_segmentation_split(), a missing
// or invalid id2label.json, missing train/validation splits, splits that list nothing; then, decoding every file on
// `threads` threads (0 = every usable CPU): undecodable images and maps, a map that is not single-channel (or
// 16-bit), an image/map size mismatch, unknown pixel values (listed). Warnings: the accepted misspelt names, a seg map that is not
// a PNG (lossy formats alter ids), an image listed twice. Summary: labels, entries per split, image sizes, and per
// split the pixel count and frequency of every class and of the ignore value 255.
ValidationReport validate_segmentation(const std::string& dir, int threads = 0);

}  // namespace em::data
