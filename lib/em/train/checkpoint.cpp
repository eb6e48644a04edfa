#include "em/train/checkpoint.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/file.hpp"
#include "em/tensor/safetensors.hpp"
#include "em/models/model_io.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <algorithm>
#include <set>
#include <random>
#include <unistd.h>

namespace em::train {
namespace fs = std::filesystem;

namespace {
bool parse_checkpoint_name(const std::string& name, int64_t* step) {
  const std::string prefix = "checkpoint-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return false;
  for (size_t i = prefix.size(); i < name.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return false;
  *step = std::stoll(name.substr(prefix.size()));
  return true;
}
}  // namespace

io::Json TrainerState::to_json() const {
  return io::Json{{"global_step", global_step},
                  {"max_steps", total_steps},
                  {"steps_per_epoch", steps_per_epoch},
                  {"epoch", epoch},
                  {"window_loss", window_loss},
                  {"window_steps", window_steps},
                  {"total_loss", total_loss},
                  {"runtime_s", runtime_s},
                  {"has_best", has_best},
                  {"best_metric", has_best ? io::Json(best_metric) : io::Json(nullptr)},
                  {"best_step", best_step},
                  {"best_model_checkpoint", best_checkpoint_step >= 0
                                                ? io::Json(fmt::format("checkpoint-{}", best_checkpoint_step))
                                                : io::Json(nullptr)},
                  {"evals_without_improvement", evals_without_improvement},
                  {"world_size", world_size},
                  {"global_batch_size", global_batch_size},
                  {"gradient_accumulation_steps", gradient_accumulation_steps},
                  {"grad_scaler", grad_scaler},
                  {"log_history", log_history}};
}

TrainerState TrainerState::from_json(const io::Json& j, const std::string& what) {
  TrainerState s;
  try {
    s.global_step = j.at("global_step").get<int64_t>();
    s.total_steps = j.at("max_steps").get<int64_t>();
    s.steps_per_epoch = j.at("steps_per_epoch").get<int64_t>();
    s.epoch = j.at("epoch").get<double>();
    s.window_loss = j.at("window_loss").get<double>();
    s.window_steps = j.at("window_steps").get<int64_t>();
    s.total_loss = j.at("total_loss").get<double>();
    s.runtime_s = j.at("runtime_s").get<double>();
    s.has_best = j.at("has_best").get<bool>();
    if (s.has_best) s.best_metric = j.at("best_metric").get<double>();
    s.best_step = j.at("best_step").get<int64_t>();
    s.evals_without_improvement = j.at("evals_without_improvement").get<int64_t>();
    s.world_size = j.value("world_size", int64_t{1});
    s.global_batch_size = j.value("global_batch_size", int64_t{0});
    s.gradient_accumulation_steps = j.value("gradient_accumulation_steps", int64_t{1});
    if (s.gradient_accumulation_steps < 1)
      fail("{}: gradient_accumulation_steps {} is not >= 1", what, s.gradient_accumulation_steps);
    const io::Json best_checkpoint = j.value("best_model_checkpoint", io::Json(nullptr));
    if (best_checkpoint.is_string() &&
        !parse_checkpoint_name(best_checkpoint.get<std::string>(), &s.best_checkpoint_step))
      fail("{}: best_model_checkpoint '{}' is not a checkpoint-<step> name", what, best_checkpoint.get<std::string>());
    s.grad_scaler = j.value("grad_scaler", io::Json::object());
    if (!s.grad_scaler.is_object()) fail("{}: grad_scaler is not an object", what);
    s.log_history = j.at("log_history");
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not an emkit trainer state ({})", what, e.what());
  }
  return s;
}

namespace {

// What emkit writes at the top of a run directory; --overwrite_output_dir removes these and nothing else.
bool is_ours(const fs::path& p) {
  std::string name = p.filename().string();
  int64_t step;
  if (parse_checkpoint_name(name, &step)) return fs::exists(p / run_dir::kTrainerState);
  static const std::vector<std::string> ours{run_dir::kModel,   run_dir::kBestModel,  run_dir::kRuns, run_dir::kPlots,
                                             run_dir::kMetrics, run_dir::kHyperparameters, run_dir::kTrainResults,
                                             run_dir::kEvalResults, run_dir::kAllResults};
  return std::find(ours.begin(), ours.end(), name) != ours.end();
}

// The files emkit writes inside its folders (a model, a checkpoint, runs/, plots/): anything else there is the
// user's.
bool is_our_file(const fs::path& file, bool in_runs, bool in_plots) {
  const std::string name = file.filename().string();
  if (in_runs) return name.rfind("events.out.tfevents.", 0) == 0;
  if (in_plots) return file.extension() == ".png" || name.find(".tmp-") != std::string::npos;
  static const std::set<std::string> ours{"config.json",           "model.safetensors",     "preprocessor_config.json",
                                          "optimizer.safetensors", "rng_state.safetensors", run_dir::kTrainerState,
                                          run_dir::kHyperparameters};
  return ours.count(name) > 0 || name.find(".tmp-") != std::string::npos;
}

// The first entry of emkit folder `dir` that emkit did not write ("" when there is none).
std::string foreign_entry(const fs::path& dir) {
  const bool in_runs = dir.filename() == run_dir::kRuns, in_plots = dir.filename() == run_dir::kPlots;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) || !is_our_file(entry.path(), in_runs, in_plots)) return entry.path().string();
  }
  return "";
}

}  // namespace

void prepare_output_dir(const fs::path& out, bool overwrite, bool resuming) {
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) fail("{}: exists and is not a folder", out.string());
  if (resuming) return;
  std::vector<fs::path> ours;
  if (fs::exists(out, ec))
    for (const auto& entry : fs::directory_iterator(out))
      if (is_ours(entry.path())) ours.push_back(entry.path());
  if (!ours.empty()) {
    if (!overwrite)
      usage_fail("{}: holds another run ({} ...); use --overwrite_output_dir to replace it, "
                 "--resume_from_checkpoint to continue it, or another --output_dir",
                 out.string(), ours.front().filename().string());
    // Only what emkit wrote goes: a file the user put into model/ or runs/ stops the overwrite before anything is
    // removed (it would be lost with the folder).
    for (const auto& p : ours)
      if (fs::is_directory(p, ec))
        if (const std::string foreign = foreign_entry(p); !foreign.empty())
          usage_fail("--overwrite_output_dir: {} was not written by emkit; move it out of {} first (emkit removes "
                     "only its own files)",
                     foreign, p.string());
    for (const auto& p : ours) {
      fs::remove_all(p, ec);
      if (ec) fail("{}: cannot remove ({})", p.string(), ec.message());
    }
    log::info("--overwrite_output_dir: removed the previous run's {} entries from {}", ours.size(), out.string());
  }
  fs::create_directories(out, ec);
  if (ec) fail("{}: cannot create the output folder ({})", out.string(), ec.message());
}

void remove_leftovers(const fs::path& out) {
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(out, ec))
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) leftovers.push_back(entry.path());
  for (const auto& p : leftovers) {
    fs::remove_all(p, ec);
    if (ec) log::warn("{}: cannot remove a killed run's leftover ({})", p.string(), ec.message());
    else log::debug("removed {}, left by a killed run", p.string());
  }
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return found;
  for (const auto& entry : fs::directory_iterator(out)) {
    int64_t step;
    if (entry.is_directory() && parse_checkpoint_name(entry.path().filename().string(), &step) &&
        fs::exists(entry.path() / run_dir::kTrainerState))
      found.emplace_back(step, entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

fs::path latest_checkpoint(const fs::path& out) {
  auto all = list_checkpoints(out);
  if (all.empty())
    fail("{}: no checkpoint to resume from (looked for checkpoint-<step>/ folders with {})", out.string(),
         run_dir::kTrainerState);
  return all.back().second;
}

void save_checkpoint(const fs::path& out, Task& task, const AdamW& optimizer, const TrainerState& state,
                     const io::Json& hyperparameters, const fs::path& model_files) {
  fs::path final_dir = out / fmt::format("checkpoint-{}", state.global_step);
  std::random_device rd;
  fs::path tmp = out / fmt::format(".tmp-checkpoint-{}-{}-{:x}", state.global_step, ::getpid(), rd());
  fs::create_directories(tmp);
  try {
    if (model_files.empty())
      task.save_model(tmp);
    else
      io::link_or_copy_files(model_files, tmp);
    tensor::save_safetensors(tmp / "optimizer.safetensors", optimizer.state(/*copy=*/false));
    torch::Tensor rng;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      rng = gen.get_state();
    }
    tensor::save_safetensors(tmp / "rng_state.safetensors", {{"torch_cpu", rng}});
    io::write_json_file(tmp / "hyperparameters.json", hyperparameters);
    // Written last: its presence marks the checkpoint complete.
    io::write_json_file(tmp / run_dir::kTrainerState, state.to_json());
    io::sync_directory(tmp);
    io::replace_directory(tmp, final_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  log::debug("saved {}", final_dir.string());
}

TrainerState load_checkpoint(const fs::path& dir, Task& task, AdamW& optimizer) {
  std::string what = (dir / run_dir::kTrainerState).string();
  TrainerState state = TrainerState::from_json(io::read_json_file(what), what);
  models::load_state_strict(task.model(), tensor::load_safetensors((dir / "model.safetensors").string()),
                            (dir / "model.safetensors").string());
  optimizer.load_state(tensor::load_safetensors((dir / "optimizer.safetensors").string()));
  auto rng = tensor::load_safetensors((dir / "rng_state.safetensors").string());
  auto it = rng.find("torch_cpu");
  if (it == rng.end()) fail("{}: missing tensor torch_cpu", (dir / "rng_state.safetensors").string());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(it->second);
  return state;
}

namespace {
// Renamed out of the listing first (one atomic step), then removed: a kill during the removal leaves a hidden leftover
// (removed at the next start), never a checkpoint-N that looks complete but lacks files.
void remove_checkpoint(const fs::path& out, const fs::path& path) {
  std::error_code ec;
  const fs::path doomed = out / fmt::format(".tmp-removing-{}", path.filename().string());
  fs::rename(path, doomed, ec);
  if (ec) {
    log::warn("{}: cannot remove old checkpoint ({})", path.string(), ec.message());
    return;
  }
  io::sync_directory(out);
  fs::remove_all(doomed, ec);
  if (ec) log::warn("{}: cannot remove old checkpoint ({})", doomed.string(), ec.message());
  log::debug("removed {} (save_total_limit)", path.string());
}
}  // namespace

void rotate_checkpoints(const fs::path& out, int64_t limit, int64_t best_step) {
  if (limit <= 0) return;
  auto all = list_checkpoints(out);  // ascending steps
  if (static_cast<int64_t>(all.size()) <= limit) return;
  // HF's _sorted_checkpoints: the best one moves to the second-newest place, out of the oldest that go.
  auto best = std::find_if(all.begin(), all.end(), [&](const auto& c) { return c.first == best_step; });
  const bool has_best = best != all.end();
  if (has_best && best + 1 != all.end()) std::rotate(best, best + 1, all.end() - 1);
  // HF keeps two with limit 1 when the newest is not the best: the best, and the newest to resume from.
  const int64_t keep = best_step >= 0 && limit == 1 && all.back().first != best_step ? 2 : limit;
  const int64_t doomed = static_cast<int64_t>(all.size()) - keep;
  for (int64_t i = 0; i < doomed; ++i) remove_checkpoint(out, all[static_cast<size_t>(i)].second);
}

void keep_only_checkpoint(const fs::path& out, int64_t best_step) {
  const auto all = list_checkpoints(out);
  if (std::none_of(all.begin(), all.end(), [&](const auto& c) { return c.first == best_step; })) return;
  for (const auto& [step, path] : all)
    if (step != best_step) remove_checkpoint(out, path);
}

int64_t best_checkpoint_after_save(const fs::path& out, const TrainerState& state, int64_t saving_step) {
  if (!state.has_best) return state.best_checkpoint_step;
  std::error_code ec;
  if (state.best_step == saving_step || fs::exists(out / fmt::format("checkpoint-{}", state.best_step) /
                                                   run_dir::kTrainerState, ec))
    return state.best_step;
  return state.best_checkpoint_step;
}

}  // namespace em::train
