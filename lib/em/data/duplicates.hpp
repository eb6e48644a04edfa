// em-validate's duplicate-image check, shared by every layout: images with the same bytes within a split, leaking
// from one split into another, or whole splits that are copies of each other.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "em/data/validate.hpp"

namespace em::data {

// One image file a validator read, for the duplicate check.
struct ImageFingerprint {
  std::string path;
  std::string split;          // "train"
  uint64_t bytes = 0;         // DecodedInfo's; 0 = unreadable, left out
  uint64_t content_hash = 0;
};
// Warnings about images with the same bytes (size and FNV-1a of the content), in file order: a copy within a split
// (named with its first copy); an image of a later split found in an earlier one (leakage: validation or test images
// that are also in train, naming both files); one warning instead of those per pair of splits that hold exactly the
// same images. A path listed twice is the validator's to report. Summary "duplicate_images" (when there are any):
// {"train": copies within train, "train & validation": images validation shares with train, ...}.
void report_duplicate_images(const std::vector<ImageFingerprint>& images, ValidationReport& report);

}  // namespace em::data
