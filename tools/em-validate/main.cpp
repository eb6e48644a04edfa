// em-validate: check a dataset folder against its algorithm's layout (docs/datasets.md); every problem + a summary.
#include "common/cli.hpp"
#include "em/core/algo.hpp"
#include "em/core/log.hpp"
#include "em/data/validate.hpp"
#include "em/draw/preview.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"

#include <fmt/ranges.h>

int main(int argc, char** argv) {
  std::string algo, dir;
  bool json = false, compact = false;
  em::draw::PreviewOptions preview;
  em::cli::ToolInfo info{
      "em-validate",
      "Check a dataset folder against the layout of an algorithm: decode every image and list every problem "
      "(path: reason; detection: with the JSON path of the element) and a summary (labels, images per split and "
      "label, image sizes; segmentation: pixel frequency per class and split; detection: boxes per class and by "
      "size). The report goes "
      "to stdout (text, or JSON with --json); exit 0 when the dataset is valid, 1 when it has problems. With "
      "--preview OUT also pictures of the annotations: a contact sheet per split and instances per class.",
      "em-validate --algo classification|segmentation|detection DIR [--json [--compact]] [--preview OUT "
      "[--preview_images N]]",
      "em-validate --algo classification data/ --json | jq -r '.problems[] | \"\\(.path)\\t\\(.reason)\"'",
      "em-train(1), docs/datasets.md, docs/em-validate.md"};
  return em::cli::run_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("--algo", algo, em::algo_names(", ", ", "))->required();
        app.add_option("dir", dir, "The dataset folder (holds train/, validation/, optional test/)")->required();
        app.add_flag("--json", json, "Print the report as one JSON object instead of text");
        em::cli::bind_compact_flag(app, compact, "With --json: the JSON report on one line instead of indented");
        CLI::Option* out =
            app.add_option("--preview", preview.out_dir,
                           "Also draw the dataset into this folder (created): SPLIT.png per split, a contact sheet "
                           "of its first images with their annotations (labels, seg maps, boxes), and "
                           "instances_per_class.png (docs/em-validate.md); '-' is not allowed, stdout carries the "
                           "report");
        app.add_option("--preview_images", preview.images_per_sheet,
                       "With --preview: images per contact sheet [default 16]")
            ->needs(out);
      },
      [&] {
        preview.validate();
        em::data::ValidationReport report =
            em::data::validate_dataset(em::parse_algo(algo), dir, em::cli::common_options().threads);
        if (json) {
          em::io::write_stdout(em::cli::json_output(report.to_json(), compact));
          if (!report.ok()) em::log::info("{}: invalid, {} problem(s)", dir, report.problems.size());
        } else {
          em::io::write_stdout(report.to_text());
        }
        if (!preview.out_dir.empty()) {
          const std::vector<std::string> written = em::draw::write_dataset_preview(report, preview);
          if (written.empty()) em::log::info("{}: no preview drawn: no split could be listed", dir);
          else em::log::info("preview: wrote {}", fmt::join(written, ", "));
        }
        return report.ok() ? em::ExitCode::ok : em::ExitCode::failure;
      });
}
