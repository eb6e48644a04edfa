// Which algorithm's layout a dataset folder looks like, from names and small JSON files only (nothing is decoded).
// em-validate, em-train and em-eval ask it first, so that --algo classification on a segmentation folder (whose
// images/ and annotations/ read as two labels) is refused with the algorithm to use instead of trained on.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "em/core/algo.hpp"

namespace em::data {

struct LayoutGuess {
  Algo algo;
  // What gave it away, relative to DIR: {"train/images", "train/annotations", "train/train.json"}.
  std::vector<std::string> evidence;
};

// The algorithm whose layout (docs/datasets.md) DIR's first split folder (train, else validation, else test) shows:
// detection for a COCO file (_annotations.coco.json, or any JSON object with images, annotations and categories),
// segmentation for a list of {"image", "seg_map"} (train/train.json or any such JSON file) or
// resources/id2label.json, classification for sub-folders of images that no JSON file refers to (images/ and
// annotations/ never count as labels). nullopt when DIR shows no layout or the signs of two.
std::optional<LayoutGuess> guess_layout(const std::string& dir);

// The reason to report when DIR looks like another algorithm's dataset than `algo`: "looks like a segmentation
// dataset (train/images, train/annotations, train/train.json), not classification: use --algo segmentation";
// nullopt when it does not.
std::optional<std::string> layout_mismatch(Algo algo, const std::string& dir);

// Throws em::Error{DIR, layout_mismatch()} (exit 1, as for any dataset that does not fit --algo's layout).
void require_layout(Algo algo, const std::string& dir);

}  // namespace em::data
