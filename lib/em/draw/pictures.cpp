#include "em/draw/pictures.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/draw/annotate.hpp"
#include "em/draw/charts.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"

namespace fs = std::filesystem;

namespace em::draw {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A file name made of a label or metric name: characters other than letters, digits, '.', '-' and '_' become '_'
// (class names may hold '/', spaces or non-ASCII letters; the file name needs none of them).
std::string file_stem(const std::string& name) {
  std::string out;
  for (unsigned char c : name) out += (std::isalnum(c) || c == '.' || c == '-' || c == '_') && c < 128 ? char(c) : '_';
  return out.empty() ? "_" : out;
}

double number_or_nan(const io::Json& v) { return v.is_number() ? v.get<double>() : kNaN; }

class Writer {
 public:
  explicit Writer(fs::path dir) : dir_(std::move(dir)) {}
  void write(const Canvas& canvas, const std::string& name) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    canvas.write_png(path.string());
    written_.push_back(path.string());
  }
  std::vector<std::string> written() && { return std::move(written_); }

 private:
  fs::path dir_;
  std::vector<std::string> written_;
};

const io::Json& field(const io::Json& metrics, const char* key) {
  auto it = metrics.find(key);
  if (it == metrics.end()) fail("--plots: the metrics have no \"{}\"", key);
  return *it;
}

void classification_plots(const EvalPlotInput& in, Writer& out) {
  const io::Json& cm = field(in.metrics, "confusion_matrix");
  const auto names = cm.at("labels").get<std::vector<std::string>>();
  const auto counts = cm.at("matrix").get<std::vector<std::vector<int64_t>>>();
  out.write(confusion_matrix_chart(counts, names, false, "Confusion matrix (rows: truth, columns: prediction)").canvas,
            "confusion_matrix.png");
  out.write(confusion_matrix_chart(counts, names, true, "Confusion matrix, each row divided by its images").canvas,
            "confusion_matrix_normalized.png");
  std::vector<std::string> categories;
  std::vector<Series> series{{"precision", {}}, {"recall", {}}, {"f1", {}}};
  for (const auto& [label, values] : field(in.metrics, "per_class").items()) {
    categories.push_back(label);
    for (auto& s : series) s.values.push_back(number_or_nan(values.at(s.name)));
  }
  out.write(bar_chart(categories, series, "Per-class precision, recall and F1", "score"), "per_class_metrics.png");
}

LabelMap label_map_of(const io::Image& map) {
  if (map.channels != 1) fail("--plots: a label map has {} channels, expected 1", map.channels);
  LabelMap out;
  out.width = map.width;
  out.height = map.height;
  out.labels.assign(map.pixels.begin(), map.pixels.end());
  return out;
}

void segmentation_plots(const EvalPlotInput& in, Writer& out) {
  std::vector<std::string> categories;
  std::vector<Series> series{{"IoU", {}}, {"accuracy", {}}};
  const io::Json& accuracy = field(in.metrics, "per_category_accuracy");
  for (const auto& [label, iou] : field(in.metrics, "per_category_iou").items()) {
    categories.push_back(label);
    series[0].values.push_back(number_or_nan(iou));
    series[1].values.push_back(accuracy.contains(label) ? number_or_nan(accuracy.at(label)) : kNaN);
  }
  out.write(bar_chart(categories, series,
                      fmt::format("Per-class IoU and accuracy (mean IoU {:.3f}; no bar: class absent)",
                                  number_or_nan(field(in.metrics, "mean_iou"))),
                      "score"),
            "per_class_iou.png");
  for (size_t i = 0; i < in.examples.size(); ++i) {
    const auto& ex = in.examples[i];
    Canvas image(ex.image), truth(ex.image), prediction(ex.image);
    draw_label_map(truth, label_map_of(ex.truth), in.labels);
    draw_label_map(prediction, label_map_of(ex.prediction), in.labels);
    out.write(side_by_side({&image, &truth, &prediction}, {ex.name, "truth", "prediction"}),
              fmt::format("examples/{}_{}.png", i, file_stem(fs::path(ex.name).stem().string())));
  }
}

void detection_plots(const EvalPlotInput& in, Writer& out) {
  std::vector<std::string> categories;
  std::vector<Series> series{{"AP", {}}, {"AP50", {}}};
  for (const auto& [name, values] : field(in.metrics, "per_class").items()) {
    categories.push_back(name);
    // -1: no ground truth of the class in the split (pycocotools' value); drawn as no bar.
    for (auto& s : series) {
      const double v = number_or_nan(values.at(s.name));
      s.values.push_back(v < 0 ? kNaN : v);
    }
  }
  out.write(bar_chart(categories, series, "Per-class AP (IoU .50:.95) and AP50; no bar: no ground truth", "AP"),
            "per_class_ap.png");

  if (in.coco == nullptr || in.coco->precision.empty()) return;
  const metrics::CocoEvalResult& c = *in.coco;
  // pycocotools' precision[T][R][K][A][M] at area "all" (a = 0) and the largest maxDets (m = M - 1), against the
  // 101 recall thresholds; categories without ground truth hold -1 and are left out of the means.
  const size_t a = 0, m = c.M - 1;
  std::vector<double> recall(c.R);
  for (size_t r = 0; r < c.R; ++r) recall[r] = c.R > 1 ? static_cast<double>(r) / static_cast<double>(c.R - 1) : 0;
  auto mean_curve = [&](size_t t_begin, size_t t_end) {
    std::vector<double> ys(c.R, kNaN);
    for (size_t r = 0; r < c.R; ++r) {
      double sum = 0;
      size_t n = 0;
      for (size_t t = t_begin; t < t_end; ++t)
        for (size_t k = 0; k < c.K; ++k)
          if (const double p = c.precision_at(t, r, k, a, m); p >= 0) sum += p, ++n;
      if (n > 0) ys[r] = sum / static_cast<double>(n);
    }
    return ys;
  };
  const std::vector<Line> means{
      {fmt::format("mAP@0.5 {:.3f}", c.stats[1]), recall, mean_curve(0, 1)},
      {fmt::format("mAP@0.5:0.95 {:.3f}", c.stats[0]), recall, mean_curve(0, c.T)}};
  out.write(line_chart(means, "Precision-recall, mean over classes (COCO accumulation: all areas, 100 detections)",
                       "recall", "precision",
                       {0, 1}, {0, 1}),
            "pr_curve.png");
  // One line per class reads only up to ~20 classes; beyond that the mean curves and the AP bars say it.
  constexpr size_t kMaxClassCurves = 20;
  if (c.K > kMaxClassCurves) return;
  std::vector<Line> lines;
  for (size_t k = 0; k < c.K; ++k) {
    if (c.precision_at(0, 0, k, a, m) < 0) continue;
    Line line{fmt::format("{} {:.3f}", k < c.category_names.size() ? c.category_names[k] : std::to_string(k),
                          c.ap50_per_category[k]),
              recall, std::vector<double>(c.R)};
    for (size_t r = 0; r < c.R; ++r) line.ys[r] = c.precision_at(0, r, k, a, m);
    lines.push_back(std::move(line));
  }
  lines.push_back(means[0]);
  out.write(line_chart(lines, "Precision-recall per class at IoU 0.5 (legend: AP50)", "recall", "precision", {0, 1},
                       {0, 1}),
            "pr_curves_per_class.png");
}

}  // namespace

void write_prediction_pictures(const std::vector<std::string>& paths, const std::vector<std::string>& images,
                               Algo algo, const std::vector<io::Json>& responses,
                               const std::vector<std::string>& labels) {
  if (paths.size() != images.size() || paths.size() != responses.size())
    fail("write_prediction_pictures: {} paths, {} images and {} responses", paths.size(), images.size(),
         responses.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    const io::Image image = io::decode_image(images[i], fmt::format("request: instances[{}]", i));
    const Canvas canvas = draw_prediction(image, algo, responses[i], labels);
    if (const fs::path parent = fs::path(paths[i]).parent_path(); !parent.empty()) fs::create_directories(parent);
    canvas.write_png(paths[i]);
  }
}

std::vector<std::string> write_eval_plots(const std::string& dir, const EvalPlotInput& input) {
  Writer out(dir);
  switch (input.algo) {
    case Algo::classification: classification_plots(input, out); break;
    case Algo::segmentation: segmentation_plots(input, out); break;
    case Algo::detection: detection_plots(input, out); break;
  }
  return std::move(out).written();
}

std::vector<std::string> write_run_plots(const std::string& run_dir, const std::string& out_dir) {
  const fs::path jsonl = fs::path(run_dir) / "metrics.jsonl";
  if (!fs::exists(jsonl)) fail_at(jsonl.string(), "not found (is {} an em-train run directory?)", run_dir);
  const std::string text = io::read_file(jsonl.string());

  // One chart per value, in the order the values first appear (loss, learning_rate, grad_norm, ..., eval_*);
  // "group/name" values (eval_iou/road) are lines of the chart "group".
  struct Chart {
    std::string title;
    std::vector<Line> lines;
    std::map<std::string, size_t> line_of;
  };
  std::vector<Chart> charts;
  std::map<std::string, size_t> chart_of;
  size_t records = 0, skipped = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto record = io::try_parse_json(line);
    if (!record || !record->is_object() || !record->contains("step") || !(*record)["step"].is_number()) {
      ++skipped;  // a line cut short by a crash, or not ours
      continue;
    }
    ++records;
    const double step = (*record)["step"].get<double>();
    for (const auto& [key, value] : record->items()) {
      if (key == "step" || key == "epoch" || key == "time" || key == "elapsed_s") continue;
      if (!value.is_number() && !value.is_null()) continue;
      const size_t slash = key.find('/');
      const std::string group = slash == std::string::npos ? key : key.substr(0, slash);
      const std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
      auto [c, new_chart] = chart_of.emplace(group, charts.size());
      if (new_chart) charts.push_back({group, {}, {}});
      Chart& chart = charts[c->second];
      auto [l, new_line] = chart.line_of.emplace(name, chart.lines.size());
      if (new_line) chart.lines.push_back({name, {}, {}});
      Line& series = chart.lines[l->second];
      series.xs.push_back(step);
      series.ys.push_back(number_or_nan(value));
    }
  }
  if (records == 0) fail_at(jsonl.string(), "no logged steps to plot{}", skipped ? " (every line is unreadable)" : "");
  if (skipped > 0) log::warn("{}: skipped {} unreadable line(s)", jsonl.string(), skipped);

  Writer out(out_dir.empty() ? fs::path(run_dir) / "plots" : fs::path(out_dir));
  std::vector<Canvas> canvases;
  for (const Chart& chart : charts) {
    canvases.push_back(line_chart(chart.lines, chart.title + " against step", "step", chart.title));
    out.write(canvases.back(), file_stem(chart.title) + ".png");
  }
  std::vector<const Canvas*> all;
  for (const auto& c : canvases) all.push_back(&c);
  out.write(tile_charts(all, 3), "results.png");
  return std::move(out).written();
}

}  // namespace em::draw
