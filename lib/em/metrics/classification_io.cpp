#include "em/metrics/classification_io.hpp"

#include <map>
#include <set>
#include <unordered_map>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/data/classification_dataset.hpp"
#include "em/io/file.hpp"

namespace em::metrics {
namespace fs = std::filesystem;

namespace {

// At most this many paths are quoted in a message about missing or unknown images.
constexpr std::size_t kQuoted = 3;

std::string short_dump(const io::Json& value) {
  std::string s = io::dump_json(value);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Calls fn(object, line) for each non-blank line of a JSONL text; errors are "<what>:<line>: ...".
template <typename Fn>
void for_each_jsonl_object(const std::string& text, const std::string& what, Fn&& fn) {
  std::size_t line = 0, pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string row = text.substr(pos, end - pos);
    if (!row.empty() && row.back() == '\r') row.pop_back();
    pos = end + 1;
    if (row.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", what, line);
    io::Json value = io::parse_json(row, where);
    if (!value.is_object()) fail("{}: expected a JSON object, got {}", where, short_dump(value));
    fn(value, line, where);
  }
}

std::string string_field(const io::Json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) fail("{}: missing field \"{}\"", where, key);
  if (!it->is_string()) fail("{}: field \"{}\": expected a string, got {}", where, key, short_dump(*it));
  std::string value = it->get<std::string>();
  if (value.empty()) fail("{}: field \"{}\" is empty", where, key);
  return value;
}

std::string quote_some(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < kQuoted; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > kQuoted) out += ", ...";
  return out;
}

}  // namespace

std::string normalize_image_path(const std::string& path) {
  std::string s = fs::path(path).lexically_normal().generic_string();
  while (s.rfind("./", 0) == 0) s.erase(0, 2);
  return s;
}

io::Json prediction_to_json(const ClassificationPrediction& prediction) {
  io::Json j = io::Json::object();
  j["image"] = prediction.image;
  j["label"] = prediction.label;
  if (prediction.score) j["score"] = *prediction.score;
  if (prediction.label_id) j["label_id"] = *prediction.label_id;
  return j;
}

std::string format_prediction_line(const ClassificationPrediction& prediction) {
  return io::dump_json(prediction_to_json(prediction)) + "\n";
}

void write_predictions_jsonl(const std::string& path, const std::vector<ClassificationPrediction>& predictions) {
  std::string text;
  for (const auto& p : predictions) text += format_prediction_line(p);
  io::write_file_atomic(path, text);
}

std::vector<ClassificationPrediction> parse_predictions_jsonl(const std::string& text, const std::string& what) {
  std::vector<ClassificationPrediction> out;
  std::unordered_map<std::string, std::size_t> seen;  // normalised image -> line
  for_each_jsonl_object(text, what, [&](const io::Json& j, std::size_t line, const std::string& where) {
    ClassificationPrediction p;
    p.line = line;
    p.image = string_field(j, "image", where);
    p.label = string_field(j, "label", where);
    if (auto it = j.find("score"); it != j.end() && !it->is_null()) {
      if (!it->is_number()) fail("{}: field \"score\": expected a number, got {}", where, short_dump(*it));
      p.score = it->get<double>();
    }
    if (auto it = j.find("label_id"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer())
        fail("{}: field \"label_id\": expected an integer, got {}", where, short_dump(*it));
      p.label_id = it->get<int64_t>();
    }
    auto [pos, fresh] = seen.emplace(normalize_image_path(p.image), line);
    if (!fresh) fail("{}: image \"{}\" is predicted twice (also on line {})", where, p.image, pos->second);
    out.push_back(std::move(p));
  });
  if (out.empty()) fail("{}: no predictions (expected one JSON object per line)", what);
  return out;
}

std::vector<ClassificationPrediction> read_predictions_jsonl(const std::string& path) {
  return parse_predictions_jsonl(io::read_file(path), path == "-" ? "stdin" : path);
}

std::vector<ClassificationTruth> parse_truth_jsonl(const std::string& text, const std::string& what) {
  std::vector<ClassificationTruth> out;
  std::unordered_map<std::string, std::size_t> seen;
  for_each_jsonl_object(text, what, [&](const io::Json& j, std::size_t line, const std::string& where) {
    ClassificationTruth t;
    t.line = line;
    t.image = string_field(j, "image", where);
    t.label = string_field(j, "label", where);
    auto [pos, fresh] = seen.emplace(normalize_image_path(t.image), line);
    if (!fresh) fail("{}: image \"{}\" is listed twice (also on line {})", where, t.image, pos->second);
    out.push_back(std::move(t));
  });
  if (out.empty()) fail("{}: no truth records (expected one {{\"image\", \"label\"}} object per line)", what);
  return out;
}

std::vector<ClassificationTruth> list_truth_split(const fs::path& split_dir) {
  // Paths are relative to the dataset folder, so the split folder's own name leads them ("validation/...").
  // The listing is em::data's, so em-metrics counts exactly the images em-eval evaluates.
  fs::path dir = fs::absolute(split_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  const std::string split = dir.filename().string();
  const data::SplitListing listing = data::list_classification_split(dir.parent_path().string(), split);
  if (!listing.exists) fail("{}: not a folder", split_dir.string());

  std::vector<ClassificationTruth> out;
  for (const auto& folder : listing.folders)
    for (const auto& image : folder.images)
      out.push_back({split + "/" + folder.name + "/" + fs::path(image).filename().string(), folder.name, 0});
  if (!listing.stray_images.empty())
    log::warn("{}: {} image(s) outside a label folder are not part of the truth, e.g. {}", split_dir.string(),
              listing.stray_images.size(), listing.stray_images.front());
  if (!listing.ignored.empty())
    log::debug("{}: {} non-image file(s) or folder(s) skipped", split_dir.string(), listing.ignored.size());
  if (out.empty())
    fail("{}: no images in label sub-folders (expected {}/{{label}}/image.png)", split_dir.string(),
         split_dir.string());
  return out;
}

std::vector<ClassificationTruth> read_truth(const std::string& path) {
  std::error_code ec;
  if (path != "-" && fs::is_directory(path, ec)) return list_truth_split(path);
  return parse_truth_jsonl(io::read_file(path), path == "-" ? "stdin" : path);
}

ClassificationScore score_predictions(const std::vector<ClassificationTruth>& truth,
                                      const std::vector<ClassificationPrediction>& predictions,
                                      const ClassificationMatchOptions& options) {
  const std::string& tname = options.truth_name;
  const std::string& pname = options.predictions_name;
  std::unordered_map<std::string, std::size_t> truth_index;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    auto [pos, fresh] = truth_index.emplace(normalize_image_path(truth[i].image), i);
    if (!fresh) fail("{}: image \"{}\" is listed twice", tname, truth[i].image);
  }

  // Pair every prediction with its truth image; unknown images are always an error (usually the wrong --truth).
  std::vector<const ClassificationPrediction*> paired(truth.size(), nullptr);
  std::vector<std::string> unknown;
  for (const auto& p : predictions) {
    auto it = truth_index.find(normalize_image_path(p.image));
    if (it == truth_index.end()) {
      unknown.push_back(p.line ? fmt::format("{} (line {})", p.image, p.line) : p.image);
      continue;
    }
    if (paired[it->second]) fail("{}: image \"{}\" is predicted twice", pname, p.image);
    paired[it->second] = &p;
  }
  if (!unknown.empty())
    fail("{}: {} predicted image(s) are not in {}: {}; image paths must be relative to the dataset folder, like \"{}\"",
         pname, unknown.size(), tname, quote_some(unknown), truth.empty() ? "validation/cat/001.png" : truth[0].image);

  std::vector<std::string> missing;
  for (std::size_t i = 0; i < truth.size(); ++i)
    if (!paired[i]) missing.push_back(truth[i].image);
  if (!missing.empty()) {
    if (!options.allow_missing)
      fail("{}: {} of {} images in {} have no prediction: {} (--allow_missing scores only the predicted ones)", pname,
           missing.size(), truth.size(), tname, quote_some(missing));
    log::warn("{}: {} of {} images in {} have no prediction and are not scored: {}", pname, missing.size(),
              truth.size(), tname, quote_some(missing));
  }
  if (missing.size() == truth.size()) fail("{}: no image of {} has a prediction; nothing to score", pname, tname);

  std::vector<std::string> labels = options.labels;
  if (labels.empty()) {
    std::set<std::string> all;
    for (std::size_t i = 0; i < truth.size(); ++i) {
      if (!paired[i]) continue;
      all.insert(truth[i].label);
      all.insert(paired[i]->label);
    }
    labels.assign(all.begin(), all.end());
  }
  std::map<std::string, int64_t> label_index;
  for (std::size_t i = 0; i < labels.size(); ++i) label_index.emplace(labels[i], static_cast<int64_t>(i));
  auto index_of = [&](const std::string& label, const std::string& where) {
    auto it = label_index.find(label);
    if (it == label_index.end())
      fail("{}: label \"{}\" is not one of the {} known labels ({})", where, label, labels.size(), quote_some(labels));
    return it->second;
  };

  ClassificationAccumulator acc(labels);
  ClassificationScore score{ClassificationMetrics{}, truth.size(), 0};
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const ClassificationPrediction* p = paired[i];
    if (!p) continue;
    const std::string twhere =
        truth[i].line ? fmt::format("{}:{}", tname, truth[i].line) : tname + ": " + truth[i].image;
    const std::string pwhere = p->line ? fmt::format("{}:{}", pname, p->line) : pname + ": " + p->image;
    acc.add(index_of(truth[i].label, twhere), index_of(p->label, pwhere));
    ++score.num_scored;
  }
  score.metrics = acc.compute();
  return score;
}

ClassificationScore score_prediction_files(const std::string& truth_path, const std::string& predictions_path,
                                           ClassificationMatchOptions options) {
  if (truth_path == "-" && predictions_path == "-") usage_fail("--truth and --pred cannot both be stdin ('-')");
  options.truth_name = truth_path == "-" ? "stdin" : truth_path;
  options.predictions_name = predictions_path == "-" ? "stdin" : predictions_path;
  auto truth = read_truth(truth_path);
  auto predictions = read_predictions_jsonl(predictions_path);
  return score_predictions(truth, predictions, options);
}

}  // namespace em::metrics
