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

// The fields this struct interprets; everything else goes to `extra` ("crop_pct" too, except for ConvNext).
const std::set<std::string>& known_fields() {
  static const std::set<std::string> fields = {"do_resize",     "size",       "resample",   "do_rescale",
                                               "rescale_factor", "do_normalize", "image_mean", "image_std",
                                               "image_processor_type"};
  return fields;
}

// How HF's processor class reads "size", and which of its fields change the pixels.
enum class Family {
  square,    // ViTImageProcessor, SegformerImageProcessor: "size" {"height", "width"} or an integer
  convnext,  // ConvNextImageProcessor: "size" {"shortest_edge"} or an integer, crop_pct; resample 3 by default
  detr,      // DetrImageProcessor: DetrImageProcessorConfig reads "size", "do_pad", "pad_size"
  other,     // another class, or none named: read as the square ones; pixel-changing fields of others refused
};

Family family_of(const std::string& processor_class) {
  if (processor_class == "ViTImageProcessor" || processor_class == "SegformerImageProcessor") return Family::square;
  if (processor_class == "ConvNextImageProcessor") return Family::convnext;
  if (processor_class == "DetrImageProcessor") return Family::detr;
  return Family::other;
}

// Fields of other HF processors that change the pixels in ways emkit does not reproduce; a field at a value that
// leaves the pixels alone (false, null, ensure_multiple_of 1) is accepted. HF's own classes ignore fields that are not
// theirs, so only Family::other is checked.
bool changes_pixels(const std::string& field, const io::Json& v) {
  static const std::set<std::string> when_true = {"do_center_crop", "do_pad",         "do_flip_channel_order",
                                                   "keep_aspect_ratio", "rescale_offset", "do_crop_margin",
                                                   "do_thumbnail",   "do_align_long_axis", "do_color_quantize"};
  static const std::set<std::string> when_set = {"crop_pct", "pad_size", "size_divisor", "size_divisibility"};
  if (v.is_null()) return false;
  if (when_true.count(field)) return !(v.is_boolean() && !v.get<bool>());
  if (when_set.count(field)) return true;
  if (field == "ensure_multiple_of") return !(v.is_number_integer() && v.get<int64_t>() == 1);
  return false;
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

constexpr double kMaxNormalisedPixel = 1e4;
constexpr int64_t kMaxInputSide = 8192;
// ConvNextImageProcessor crops below this shortest edge and warps to a square from it on.
constexpr int64_t kConvNextCropBelow = 384;

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

std::string PreprocessorConfig::processor_class() const {
  if (!image_processor_type.empty()) return image_processor_type;
  auto it = extra.find("feature_extractor_type");
  if (it == extra.end() || !it->is_string()) return "";
  std::string name = it->get<std::string>();
  const std::string suffix = "FeatureExtractor";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    name = name.substr(0, name.size() - suffix.size()) + "ImageProcessor";
  return name;
}

bool PreprocessorConfig::reduce_labels() const {
  for (const char* key : {"reduce_labels", "do_reduce_labels"})
    if (auto it = extra.find(key); it != extra.end() && it->is_boolean()) return it->get<bool>();
  return false;
}

PreprocessorConfig::Geometry PreprocessorConfig::geometry(int image_height, int image_width) const {
  Geometry g{image_height, image_width, 0, 0, image_height, image_width};
  if (!do_resize) return g;
  if (shortest_edge <= 0 || shortest_edge >= kConvNextCropBelow) {
    g.resize_height = g.height = static_cast<int>(height);
    g.resize_width = g.width = static_cast<int>(width);
    return g;
  }
  // ConvNext: HF's get_resize_output_image_size(size=int(n / crop_pct), default_to_square=False) with Python's int()
  // truncating a double quotient, then center_crop's floor-division offsets.
  const int64_t short_side = static_cast<int64_t>(static_cast<double>(shortest_edge) / crop_pct);
  const bool portrait = image_width <= image_height;
  const int64_t image_short = portrait ? image_width : image_height;
  const int64_t image_long = portrait ? image_height : image_width;
  const int64_t long_side = static_cast<int64_t>(static_cast<double>(short_side * image_long) / image_short);
  if (static_cast<double>(short_side) * static_cast<double>(long_side) > static_cast<double>(io::max_image_pixels()))
    fail("preprocessor_config.json: a {}x{} image would be resized to a short side of {} and a long side of {}, more "
         "than the {} pixel limit (--max_image_pixels)",
         image_width, image_height, short_side, long_side, io::max_image_pixels());
  g.resize_height = static_cast<int>(portrait ? long_side : short_side);
  g.resize_width = static_cast<int>(portrait ? short_side : long_side);
  g.height = g.width = static_cast<int>(shortest_edge);
  g.crop_top = (g.resize_height - g.height) / 2;
  g.crop_left = (g.resize_width - g.width) / 2;
  return g;
}

void PreprocessorConfig::validate(const std::string& what) const {
  // The largest input emkit resizes to (image_size's range): a size of 1e9 must be an error, not an allocation.
  if (height < 1 || width < 1 || height > kMaxInputSide || width > kMaxInputSide)
    fail("{}: field \"size\": expected a height and width from 1 to {}, got {}x{}", what, kMaxInputSide, height, width);
  if (shortest_edge < 0 || shortest_edge > kMaxInputSide)
    fail("{}: field \"size.shortest_edge\": expected 1 to {}, got {}", what, kMaxInputSide, shortest_edge);
  if (shortest_edge > 0 && shortest_edge < kConvNextCropBelow && !(crop_pct > 0 && crop_pct <= 1))
    fail("{}: field \"crop_pct\": expected a number in (0, 1] (the centre crop's share of the resized short side), "
         "got {}",
         what, crop_pct);
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
  if (auto it = j.find("image_processor_type"); it != j.end()) {
    if (!it->is_string())
      fail("{}: field \"image_processor_type\": expected a string, got {}", what, io::dump_json(*it));
    p.image_processor_type = it->get<std::string>();
  } else {
    p.image_processor_type.clear();  // not written back: HF's class stays the one the file implies
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known_fields().count(it.key())) p.extra[it.key()] = it.value();
  const std::string cls = p.processor_class();
  const Family family = family_of(cls);
  const std::string named = cls.empty() ? std::string("a processor that names no type") : cls;
  if (family == Family::convnext) {
    p.extra.erase("crop_pct");
    if (auto it = j.find("crop_pct"); it != j.end() && !it->is_null()) {
      if (!it->is_number()) fail("{}: field \"crop_pct\": expected a number, got {}", what, io::dump_json(*it));
      p.crop_pct = it->get<double>();
    }
    p.resample = 3;  // ConvNextImageProcessor's default (PIL BICUBIC)
  }

  p.do_resize = boolean(j, "do_resize", p.do_resize, what);
  if (auto it = j.find("size"); it != j.end()) {
    const bool is_object = it->is_object();
    if (it->is_number_integer() && family == Family::convnext) {
      // HF's get_size_dict(size, default_to_square=False): an integer is the shortest edge.
      p.shortest_edge = positive(*it, "size", what);
    } else if (it->is_number_integer()) {
      p.height = p.width = positive(*it, "size", what);
    } else if (is_object && it->contains("shortest_edge") && family == Family::convnext) {
      p.shortest_edge = positive(it->at("shortest_edge"), "size.shortest_edge", what);
    } else if (is_object && it->contains("height") && it->contains("width") && family != Family::convnext) {
      p.height = positive(it->at("height"), "size.height", what);
      p.width = positive(it->at("width"), "size.width", what);
    } else if (family == Family::convnext) {
      fail("{}: field \"size\": ConvNextImageProcessor takes {{\"shortest_edge\": N}} or an integer, got {}", what,
           io::dump_json(*it));
    } else if (is_object && it->contains("shortest_edge")) {
      // Other classes give shortest_edge meanings of their own (CLIP and BiT resize then crop_size, LeViT scales it
      // by 256/224): emkit reproduces ConvNext's only.
      fail("{}: field \"size\": {} of {} is not implemented (emkit resizes by shortest_edge only for "
           "ConvNextImageProcessor, and to {{\"height\": H, \"width\": W}} otherwise)",
           what, io::dump_json(*it), named);
    } else {
      fail("{}: field \"size\": expected {{\"height\": H, \"width\": W}} or an integer, got {}", what,
           io::dump_json(*it));
    }
  } else if (family == Family::convnext) {
    p.shortest_edge = 384;  // ConvNextImageProcessor's default size
  }
  if (p.shortest_edge > 0) p.height = p.width = p.shortest_edge;
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
  // ViT's and ConvNext's defaults are IMAGENET_STANDARD_MEAN/STD (0.5); Segformer's, DETR's (and emkit's) ImageNet's.
  if (cls == "ViTImageProcessor" || family == Family::convnext) p.image_mean = p.image_std = {0.5, 0.5, 0.5};
  if (auto it = j.find("image_mean"); it != j.end()) p.image_mean = numbers(*it, "image_mean", what);
  if (auto it = j.find("image_std"); it != j.end()) p.image_std = numbers(*it, "image_std", what);
  // A single value means "every channel" in HF; expand so that the two lists have equal lengths.
  if (p.image_mean.size() == 1 && p.image_std.size() > 1) p.image_mean.resize(p.image_std.size(), p.image_mean[0]);
  if (p.image_std.size() == 1 && p.image_mean.size() > 1) p.image_std.resize(p.image_mean.size(), p.image_std[0]);
  for (const char* key : {"do_reduce_labels", "reduce_labels"})
    if (auto it = j.find(key); it != j.end() && !it->is_boolean() && !it->is_null())
      fail("{}: field \"{}\": expected true or false, got {}", what, key, io::dump_json(*it));
  if (family == Family::other)
    for (auto it = p.extra.begin(); it != p.extra.end(); ++it)
      if (changes_pixels(it.key(), it.value()))
        fail("{}: field \"{}\" = {} of {} changes the pixels in a way emkit does not implement (it reproduces "
             "ViTImageProcessor, SegformerImageProcessor, ConvNextImageProcessor and DetrImageProcessor; see "
             "docs/models.md, \"Image processors\")",
             what, it.key(), io::dump_json(it.value()), named);
  p.validate(what);
  return p;
}

PreprocessorConfig PreprocessorConfig::read(const std::string& path) {
  return from_json(io::read_json_file(path), path);
}

io::Json PreprocessorConfig::to_json() const {
  io::Json j{{"do_resize", do_resize}};
  j["size"] = shortest_edge > 0 ? io::Json{{"shortest_edge", shortest_edge}}
                                : io::Json{{"height", height}, {"width", width}};
  if (family_of(processor_class()) == Family::convnext) j["crop_pct"] = crop_pct;
  j["resample"] = resample;
  j["do_rescale"] = do_rescale;
  j["rescale_factor"] = rescale_factor;
  j["do_normalize"] = do_normalize;
  j["image_mean"] = image_mean;
  j["image_std"] = image_std;
  if (!image_processor_type.empty()) j["image_processor_type"] = image_processor_type;
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
  if (max_height != 0 || max_width != 0) {
    if (max_height < 1 || max_width < 1 || max_height > max_longest || max_width > max_longest)
      fail("{}: field \"size\": expected a max_height and max_width from 1 to {}, got {}x{}", what, max_longest,
           max_height, max_width);
  } else if (height != 0 || width != 0) {
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
  // HF's DetrImageProcessor ignores the fields that are not its own; the common reader must not refuse them.
  if (!json.contains("image_processor_type")) rest["image_processor_type"] = "DetrImageProcessor";
  p.common = PreprocessorConfig::from_json(rest, what);
  // pad_size pads every image to one fixed size (HF >= 4.41); emkit pads each batch to its largest image.
  if (auto it = json.find("pad_size"); it != json.end() && !it->is_null())
    fail("{}: field \"pad_size\" = {}: padding to a fixed size is not implemented (emkit pads each batch to its "
         "largest image, as HF does without pad_size); remove it or set it to null",
         what, io::dump_json(*it));
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
  } else if (size->is_object() && size->contains("max_height") && size->contains("max_width")) {
    p.max_height = positive(size->at("max_height"), "size.max_height");
    p.max_width = positive(size->at("max_width"), "size.max_width");
  } else {
    fail("{}: field \"size\": expected {{\"shortest_edge\": N, \"longest_edge\": M}}, {{\"height\": H, \"width\": W}}, "
         "{{\"max_height\": H, \"max_width\": W}} or an integer, got {}",
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
  else if (max_height > 0)
    j["size"] = {{"max_height", max_height}, {"max_width", max_width}};
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
  if (max_height > 0) {
    // HF's get_image_size_for_max_height_width: the smaller of the two scales, products truncated by int().
    const double scale = std::min(static_cast<double>(max_height) / h, static_cast<double>(max_width) / w);
    const int oh = static_cast<int>(h * scale), ow = static_cast<int>(w * scale);
    if (oh < 1 || ow < 1)
      fail("preprocessor_config.json: a {}x{} image would be resized to {}x{} by size {{\"max_height\": {}, "
           "\"max_width\": {}}}",
           w, h, ow, oh, max_height, max_width);
    return {oh, ow};
  }
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
