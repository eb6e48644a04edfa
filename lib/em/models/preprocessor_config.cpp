#include "em/models/preprocessor_config.hpp"

#include "em/core/error.hpp"
#include "em/io/image.hpp"
#include "em/core/log.hpp"
#include "em/data/detection_transforms.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace em::models {
namespace {

// The fields this struct interprets; everything else goes to `extra`.
const std::set<std::string>& known_fields() {
  static const std::set<std::string> fields = {"do_resize",     "size",       "resample",   "do_rescale",
                                               "rescale_factor", "do_normalize", "image_mean", "image_std",
                                               "image_processor_type"};
  return fields;
}

bool boolean(const io::Json& j, const char* key, bool fallback, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean()) fail("{}: field \"{}\": expected true or false, got {}", what, key, io::dump_json(*it));
  return it->get<bool>();
}

int64_t positive(const io::Json& j, const std::string& field, const std::string& what) {
  if (!j.is_number_integer() || j.get<int64_t>() < 1)
    fail("{}: field \"{}\": expected a positive integer, got {}", what, field, io::dump_json(j));
  return j.get<int64_t>();
}

std::vector<double> numbers(const io::Json& j, const std::string& field, const std::string& what) {
  // HF also accepts a single float for all channels.
  if (j.is_number()) return {j.get<double>()};
  bool ok = j.is_array() && !j.empty();
  if (ok)
    for (const auto& v : j) ok = ok && v.is_number();
  if (!ok) fail("{}: field \"{}\": expected a number or a non-empty array of numbers, got {}", what, field,
                io::dump_json(j));
  return j.get<std::vector<double>>();
}

}  // namespace

PreprocessorConfig PreprocessorConfig::classification(int64_t input_size) {
  PreprocessorConfig p;
  p.height = p.width = input_size;
  return p;
}

PreprocessorConfig PreprocessorConfig::segmentation(int64_t image_size) {
  PreprocessorConfig p;
  p.height = p.width = image_size;
  p.image_processor_type = "SegformerImageProcessor";
  p.extra["do_reduce_labels"] = false;
  return p;
}

namespace {
constexpr double kMaxNormalisedPixel = 1e4;
constexpr int64_t kMaxInputSide = 8192;
}  // namespace

void PreprocessorConfig::validate(const std::string& what) const {
  // The largest input emkit resizes to (image_size's range): a size of 1e9 must be an error, not an allocation.
  if (height < 1 || width < 1 || height > kMaxInputSide || width > kMaxInputSide)
    fail("{}: field \"size\": expected a height and width from 1 to {}, got {}x{}", what, kMaxInputSide, height, width);
  if (resample < 0 || resample > 5)
    fail("{}: field \"resample\": expected a PIL filter code 0..5 (2 = bilinear), got {}", what, resample);
  if (!(rescale_factor > 0) || !std::isfinite(rescale_factor))
    fail("{}: field \"rescale_factor\": expected a positive number, got {}", what, rescale_factor);
  if (image_mean.empty() || image_std.size() != image_mean.size())
    fail("{}: fields \"image_mean\" ({} values) and \"image_std\" ({} values) must be non-empty and of equal length",
         what, image_mean.size(), image_std.size());
  for (size_t i = 0; i < image_std.size(); ++i)
    if (!(image_std[i] > 0) || !std::isfinite(image_std[i]) || !std::isfinite(image_mean[i]))
      fail("{}: field \"image_std\"[{}]: expected a positive number, got {}", what, i, image_std[i]);
  // Normalised pixels must stay ordinary numbers: a std of 1e-300 or a mean of 1e300 passes the checks above but
  // turns every pixel into inf, then every score into NaN.
  const double top = do_rescale ? 255.0 * rescale_factor : 255.0;
  for (size_t i = 0; i < image_std.size() && do_normalize; ++i) {
    const double extreme = std::max(std::fabs(image_mean[i]), std::fabs(top - image_mean[i])) / image_std[i];
    if (!(extreme <= kMaxNormalisedPixel))
      fail("{}: fields \"image_mean\"[{}] = {} and \"image_std\"[{}] = {} map pixels to values up to {:g}; expected "
           "at most {:g} (HF checkpoints give about 2.6)",
           what, i, image_mean[i], i, image_std[i], extreme, kMaxNormalisedPixel);
  }
  if (!extra.is_object()) fail("{}: extra fields must form a JSON object", what);
}

PreprocessorConfig PreprocessorConfig::from_json(const io::Json& j, const std::string& what) {
  if (!j.is_object()) fail("{}: expected a JSON object (an HF preprocessor_config.json)", what);
  PreprocessorConfig p;
  p.do_resize = boolean(j, "do_resize", p.do_resize, what);
  if (auto it = j.find("size"); it != j.end()) {
    if (it->is_number_integer()) {
      p.height = p.width = positive(*it, "size", what);
    } else if (it->is_object() && it->contains("height") && it->contains("width")) {
      p.height = positive(it->at("height"), "size.height", what);
      p.width = positive(it->at("width"), "size.width", what);
    } else if (it->is_object() && it->contains("shortest_edge")) {
      p.height = p.width = positive(it->at("shortest_edge"), "size.shortest_edge", what);
      log::warn("{}: \"size\" {} read as {}x{}: emkit resizes classification images to a square and does not crop",
                what, io::dump_json(*it), p.height, p.width);
    } else {
      fail("{}: field \"size\": expected {{\"height\": H, \"width\": W}}, an integer or {{\"shortest_edge\": N}}, "
           "got {}",
           what, io::dump_json(*it));
    }
  }
  if (auto it = j.find("resample"); it != j.end()) {
    // Checked before it narrows to int: 4294967298 must not read as 2.
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 5)
      fail("{}: field \"resample\": expected a PIL filter code 0..5 (2 = bilinear), got {}", what, io::dump_json(*it));
    p.resample = it->get<int>();
  }
  p.do_rescale = boolean(j, "do_rescale", p.do_rescale, what);
  if (auto it = j.find("rescale_factor"); it != j.end()) {
    if (!it->is_number()) fail("{}: field \"rescale_factor\": expected a number, got {}", what, io::dump_json(*it));
    p.rescale_factor = it->get<double>();
  }
  p.do_normalize = boolean(j, "do_normalize", p.do_normalize, what);
  if (auto it = j.find("image_mean"); it != j.end()) p.image_mean = numbers(*it, "image_mean", what);
  if (auto it = j.find("image_std"); it != j.end()) p.image_std = numbers(*it, "image_std", what);
  // A single value means "every channel" in HF; expand so that the two lists have equal lengths.
  if (p.image_mean.size() == 1 && p.image_std.size() > 1) p.image_mean.resize(p.image_std.size(), p.image_mean[0]);
  if (p.image_std.size() == 1 && p.image_mean.size() > 1) p.image_std.resize(p.image_mean.size(), p.image_std[0]);
  if (auto it = j.find("image_processor_type"); it != j.end()) {
    if (!it->is_string())
      fail("{}: field \"image_processor_type\": expected a string, got {}", what, io::dump_json(*it));
    p.image_processor_type = it->get<std::string>();
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known_fields().count(it.key())) p.extra[it.key()] = it.value();
  p.validate(what);
  return p;
}

PreprocessorConfig PreprocessorConfig::read(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

io::Json PreprocessorConfig::to_json() const {
  io::Json j{{"do_resize", do_resize},
             {"size", {{"height", height}, {"width", width}}},
             {"resample", resample},
             {"do_rescale", do_rescale},
             {"rescale_factor", rescale_factor},
             {"do_normalize", do_normalize},
             {"image_mean", image_mean},
             {"image_std", image_std},
             {"image_processor_type", image_processor_type}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

// ---------------------------------------------------------------- DETR

DetrImageProcessorConfig DetrImageProcessorConfig::for_image_size(int64_t image_size) {
  DetrImageProcessorConfig p;
  p.common.image_processor_type = "DetrImageProcessor";
  p.shortest_edge = image_size;
  p.longest_edge = data::detr_longest_edge(image_size);
  return p;
}

void DetrImageProcessorConfig::validate(const std::string& what) const {
  common.validate(what);
  // Sizes up to those em-train writes for the largest image_size: a shortest edge of 1e9 must be an error, not an
  // allocation (DETR's "size" replaces the common height x width, which validate() bounds).
  const int64_t max_longest = data::detr_longest_edge(kMaxInputSide);
  if (height != 0 || width != 0) {
    if (height < 1 || width < 1 || height > kMaxInputSide || width > kMaxInputSide)
      fail("{}: field \"size\": expected a height and width from 1 to {}, got {}x{}", what, kMaxInputSide, height,
           width);
  } else if (shortest_edge < 1 || shortest_edge > kMaxInputSide || longest_edge < 0 || longest_edge > max_longest) {
    fail("{}: field \"size\": expected a shortest edge from 1 to {} and a longest edge up to {} (or none), got {} "
         "and {}",
         what, kMaxInputSide, max_longest, shortest_edge, longest_edge);
  }
}

DetrImageProcessorConfig DetrImageProcessorConfig::from_json(const io::Json& json, const std::string& what) {
  if (!json.is_object()) fail("{}: expected a JSON object (an HF preprocessor_config.json)", what);
  DetrImageProcessorConfig p;
  auto positive = [&](const io::Json& v, const std::string& field) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
      fail("{}: field \"{}\": expected a positive integer, got {}", what, field, io::dump_json(v));
    return v.get<int64_t>();
  };
  // The shared fields through the common reader; "size", "max_size" and "do_pad" are DETR's.
  io::Json rest = json;
  rest.erase("size");
  rest.erase("max_size");
  rest.erase("do_pad");
  rest.erase("pad_and_return_pixel_mask");
  p.common = PreprocessorConfig::from_json(rest, what);
  if (!json.contains("image_processor_type")) p.common.image_processor_type = "DetrImageProcessor";
  if (p.common.resample != 2)
    log::warn("{}: field \"resample\" is {}; emkit resizes detection images bilinearly (2)", what, p.common.resample);
  if (p.common.image_mean.size() != 3) fail("{}: field \"image_mean\": expected 3 values (RGB)", what);

  auto size = json.find("size");
  if (size == json.end()) {
    // HF's default when a config names no size.
  } else if (size->is_number_integer()) {
    // DetrFeatureExtractor (facebook/detr-resnet-50): "size": 800, "max_size": 1333.
    p.shortest_edge = positive(*size, "size");
    p.longest_edge = json.contains("max_size") ? positive(json.at("max_size"), "max_size") : 1333;
  } else if (size->is_object() && size->contains("shortest_edge")) {
    p.shortest_edge = positive(size->at("shortest_edge"), "size.shortest_edge");
    p.longest_edge = size->contains("longest_edge") && !size->at("longest_edge").is_null()
                         ? positive(size->at("longest_edge"), "size.longest_edge")
                         : 0;
  } else if (size->is_object() && size->contains("height") && size->contains("width")) {
    p.height = positive(size->at("height"), "size.height");
    p.width = positive(size->at("width"), "size.width");
  } else {
    fail("{}: field \"size\": expected {{\"shortest_edge\": N, \"longest_edge\": M}}, {{\"height\": H, \"width\": W}} "
         "or an integer, got {}",
         what, io::dump_json(*size));
  }
  for (const char* key : {"do_pad", "pad_and_return_pixel_mask"})
    if (auto it = json.find(key); it != json.end()) {
      if (!it->is_boolean()) fail("{}: field \"{}\": expected true or false, got {}", what, key, io::dump_json(*it));
      p.do_pad = it->get<bool>();
    }
  p.validate(what);
  return p;
}

DetrImageProcessorConfig DetrImageProcessorConfig::read(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

io::Json DetrImageProcessorConfig::to_json() const {
  io::Json j = common.to_json();
  if (height > 0)
    j["size"] = {{"height", height}, {"width", width}};
  else if (longest_edge > 0)
    j["size"] = {{"shortest_edge", shortest_edge}, {"longest_edge", longest_edge}};
  else
    j["size"] = {{"shortest_edge", shortest_edge}};
  j["do_pad"] = do_pad;
  // DETR's own fields last, in a fixed order (a read-back keeps them in `extra`, which would move them).
  io::Json format = j.contains("format") ? j["format"] : io::Json("coco_detection");
  io::Json convert = j.contains("do_convert_annotations") ? j["do_convert_annotations"] : io::Json(true);
  j.erase("format");
  j.erase("do_convert_annotations");
  j["format"] = format;
  j["do_convert_annotations"] = convert;
  return j;
}

std::pair<int, int> DetrImageProcessorConfig::output_size(int h, int w) const {
  if (!common.do_resize) return {h, w};
  if (height > 0) return {static_cast<int>(height), static_cast<int>(width)};
  const auto [oh, ow] = data::detr_resize_size(h, w, shortest_edge, longest_edge);
  // Without a longest edge (HF allows it) a 20000 x 1 image would become 16,000,000 x 800: the resized image is held
  // to the decoded-image pixel limit, as every image emkit decodes.
  if (static_cast<double>(oh) * ow > static_cast<double>(io::max_image_pixels()))
    fail("preprocessor_config.json: a {}x{} image would be resized to {}x{}, more than the {} pixel limit "
         "(--max_image_pixels); give the preprocessor a \"longest_edge\"",
         w, h, ow, oh, io::max_image_pixels());
  return {oh, ow};
}

}  // namespace em::models
