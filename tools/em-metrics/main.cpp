// em-metrics: metrics from prediction files + ground truth, without a model (docs/em-metrics.md); JSON on stdout.
#include "common/cli.hpp"
#include "em/core/algo.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"
#include "em/metrics/score_files.hpp"

int main(int argc, char** argv) {
  std::string algo, truth, pred, output = "-";
  bool allow_missing = false, compact = false, reduce_labels = false;
  int ignore_index = 255;
  em::cli::ToolInfo info{
      "em-metrics",
      "Compute evaluation metrics from prediction files and ground truth, without a model. classification: "
      "accuracy, macro precision/recall/F1 (scikit-learn), per-class values, confusion matrix; segmentation: "
      "mean IoU, mean/overall accuracy, per-class IoU/accuracy (HF evaluate mean_iou); detection: COCO box "
      "AP/AR and per-class AP (pycocotools COCOeval).",
      "em-metrics --algo classification --truth DIR/validation|truth.jsonl --pred predictions.jsonl\n"
      "  em-metrics --algo segmentation --truth DIR/validation --pred PRED_DIR\n"
      "  em-metrics --algo detection --truth GT.json --pred RESULTS.json",
      "em-metrics --algo classification --truth data/validation --pred pred.jsonl | jq .f1",
      "em-eval(1), docs/em-metrics.md, docs/metrics.md"};
  return em::cli::run_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("--algo", algo, em::algo_names(", ", ", "))->required();
        app.add_option("--truth", truth,
                       "classification: split folder DIR/validation ({label}/ sub-folders) or JSONL of "
                       "{\"image\",\"label\"} ('-' = stdin); segmentation: split folder DIR/validation; "
                       "detection: COCO ground-truth JSON")
            ->required();
        app.add_option("--pred", pred,
                       "classification: predictions JSONL ('-' = stdin); segmentation: folder of label PNGs at the "
                       "truth's seg_map paths; detection: COCO results JSON [{image_id, category_id, bbox, score}]")
            ->required();
        app.add_flag("--allow_missing", allow_missing,
                     "Score only the truth images that have a prediction (warn) instead of failing");
        app.add_option("--ignore_index", ignore_index, "segmentation: truth value left out of the metrics")
            ->capture_default_str();
        app.add_flag("--reduce_labels", reduce_labels,
                     "segmentation: truth 0 becomes ignored and the other ids drop by one (ADE20K-style)");
        em::cli::bind_compact_flag(app, compact);
        app.add_option("-o,--output", output, "Write the metrics here instead of stdout");
      },
      [&] {
        em::metrics::ScoreFilesOptions options;
        options.allow_missing = allow_missing;
        options.ignore_index = ignore_index;
        options.reduce_labels = reduce_labels;
        options.threads = em::cli::common_options().threads;
        const em::io::Json result = em::metrics::score_files(em::parse_algo(algo), truth, pred, options);
        em::io::write_file_atomic(output, em::cli::json_output(result, compact));
        return em::ExitCode::ok;
      });
}
