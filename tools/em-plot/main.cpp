// em-plot: redraw a run's charts (loss, learning rate and every eval metric against step) from its metrics.jsonl.
#include "common/cli.hpp"
#include "em/core/log.hpp"
#include "em/draw/pictures.hpp"
#include "em/io/file.hpp"
#include "em/io/json.hpp"

int main(int argc, char** argv) {
  std::string run_dir, output_dir;
  bool compact = false;
  em::cli::ToolInfo info{
      "em-plot",
      "Draw a training run's curves from RUN_DIR/metrics.jsonl as PNG charts: one per logged value (loss, "
      "learning_rate, grad_norm, loss terms, each eval_ metric; per-class values share a chart) and results.png "
      "with all of them. em-train draws the same into RUN_DIR/plots at the end of a run; em-plot redraws them "
      "during a run, after a crash or for an older run. Prints {\"plots\": [PATH, ...]} on stdout.",
      "em-plot RUN_DIR [--output_dir DIR]",
      "em-plot run && xdg-open run/plots/results.png",
      "em-train(1), em-eval(1) --plots, docs/em-plot.md, docs/run-directory.md"};
  info.threads_help.clear();
  return em::cli::run_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("run_dir", run_dir, "The run directory (em-train's --output_dir)")->required();
        app.add_option("--output_dir", output_dir, "Where the PNGs go [default: RUN_DIR/plots]");
        em::cli::bind_compact_flag(app, compact);
      },
      [&] {
        const std::vector<std::string> written = em::draw::write_run_plots(run_dir, output_dir);
        em::log::info("drew {} charts of {}/metrics.jsonl", written.size(), run_dir);
        em::io::write_stdout(em::cli::json_output(em::io::Json{{"plots", written}}, compact));
        return em::ExitCode::ok;
      });
}
