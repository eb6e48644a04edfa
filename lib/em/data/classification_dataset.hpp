// The classification dataset layout (docs/datasets.md): DIR/{train,validation[,test]}/{label}/image files.
// A fast scan (names only, no decoding) for training and evaluation; em-validate decodes (validate.hpp).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace em::data {

struct LabeledImage {
  std::string path;
  int64_t label = 0;  // index into ClassificationDataset::labels
};

// What one split folder holds, before any rule is applied (shared by scan() and validate_classification()).
struct SplitListing {
  std::string dir;     // DIR/train
  bool exists = false;
  struct LabelFolder {
    std::string name;                 // the label
    std::vector<std::string> images;  // full paths, sorted
  };
  std::vector<LabelFolder> folders;        // sorted by name; hidden folders skipped
  std::vector<std::string> stray_images;   // image files directly in the split folder (belong in a label folder)
  std::vector<std::string> ignored;        // non-image files and nested folders inside label folders
  // Entries that cannot be used as they are: a label folder whose name is not UTF-8, an image that is a link to a
  // file outside the split folder. (path, reason); their images are not in `folders`.
  std::vector<std::pair<std::string, std::string>> problems;
  size_t num_images() const;
};

// Extensions stb decodes (docs/datasets.md), compared case-insensitively:
// png jpg jpeg jpe jfif bmp gif tga pnm pgm ppm.
bool has_image_extension(const std::string& path);

// Lists DIR/split without decoding. Hidden entries (".DS_Store", ".ipynb_checkpoints") are skipped silently.
SplitListing list_classification_split(const std::string& dir, const std::string& split);

struct ClassificationDataset {
  std::string dir;
  std::vector<std::string> labels;  // sorted train label folder names; index = label id
  std::vector<LabeledImage> train, validation, test;  // in label order, then sorted path order
  size_t ignored_files = 0;         // files skipped for their extension (warned about once)

  // Throws em::Error naming the folder for: DIR or DIR/train missing, DIR/validation missing (when required),
  // a split without images, a validation/test label that train lacks. Warns about empty label folders,
  // ignored files and images outside label folders.
  static ClassificationDataset scan(const std::string& dir, bool require_validation = true);

  // "train" / "validation" / "test"; throws em::Error when that split is absent, UsageError for another name.
  const std::vector<LabeledImage>& split(const std::string& name) const;
};

}  // namespace em::data
