#include "em/train/run_directory.hpp"

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/io/file.hpp"
#include "em/train/tensorboard.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

namespace em::train {
namespace fs = std::filesystem;

// metrics.jsonl: one JSON object per line, appended and flushed as it happens (for jq, Makefiles, plots).
class MetricsLog {
 public:
  // Keeps only the lines up to `keep_until_step` (a resumed run rewrites what came after its checkpoint).
  MetricsLog(const fs::path& path, int64_t keep_until_step) {
    std::string kept;
    if (keep_until_step >= 0 && fs::exists(path)) {
      std::istringstream in(io::read_file(path.string()));
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto j = io::try_parse_json(line);  // a line cut short by a crash is dropped
        if (j && j->is_object() && j->contains("step") && (*j)["step"].is_number_integer() &&
            (*j)["step"].get<int64_t>() <= keep_until_step)
          kept += line + "\n";
      }
    }
    io::write_file_atomic(path, kept);
    out_.open(path, std::ios::app);
    if (!out_) fail("{}: cannot open for appending", path.string());
  }
  // Each line also gets "time" (UTC, ISO 8601 with milliseconds) and "elapsed_s" (seconds since this process
  // opened the log; a resumed run counts from its restart).
  void write(const io::Json& record) {
    io::Json line = record;
    const auto now = std::chrono::system_clock::now();
    line["time"] = iso8601_utc(now);
    line["elapsed_s"] = std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() *
                                   1000.0) / 1000.0;
    out_ << io::dump_json(line) << "\n";
    out_.flush();
  }

 private:
  static std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    return fmt::format("{}.{:03d}Z", text, static_cast<int>(ms));
  }

  std::ofstream out_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

namespace {

// The run directory's lock: an flock on OUT/.emkit.lock, which holds the owner's pid for the message. Returns the
// descriptor to keep open.
int lock_run_directory(const fs::path& root) {
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec)) fail("{}: exists and is not a folder", root.string());
  fs::create_directories(root, ec);
  if (ec) fail("{}: cannot create the output folder ({})", root.string(), ec.message());
  const fs::path path = root / ".emkit.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create the run directory's lock ({})", path.string(), std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (e == EWOULDBLOCK)
      fail("{}: another em-train{} is writing this run directory; wait for it, stop it, or use another --output_dir",
           root.string(), n > 0 ? fmt::format(" (pid {})", std::string(buf, static_cast<size_t>(n))) : std::string());
    fail("{}: cannot lock ({})", path.string(), std::strerror(e));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
    log::debug("{}: cannot record the pid ({})", path.string(), std::strerror(errno));
  return fd;
}

}  // namespace

RunDirectory::RunDirectory(fs::path root, bool overwrite, bool resuming, bool writer)
    : root_(std::move(root)), writer_(writer) {
  if (!writer_) return;
  lock_fd_ = lock_run_directory(root_);
  try {
    remove_leftovers(root_);
    prepare_output_dir(root_, overwrite, resuming);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

RunDirectory::~RunDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

fs::path RunDirectory::checkpoint_path(int64_t step) const { return root_ / fmt::format("checkpoint-{}", step); }

fs::path RunDirectory::resume_point(const std::string& requested) const {
  fs::path dir = requested.empty() ? latest_checkpoint(root_) : fs::path(requested);
  if (!fs::exists(dir / run_dir::kTrainerState))
    fail("{}: not a complete checkpoint (no {})", dir.string(), run_dir::kTrainerState);
  return dir;
}

void RunDirectory::open_logs(const io::Json& hyperparameters, int64_t resumed_step, int64_t first_step) {
  if (!writer_) return;
  io::write_json_file(root_ / run_dir::kHyperparameters, hyperparameters);
  metrics_ = std::make_unique<MetricsLog>(root_ / run_dir::kMetrics, resumed_step);
  events_ = std::make_unique<EventWriter>(root_ / run_dir::kRuns);
  // TensorBoard drops events after this step from earlier files: what a killed run logged past its checkpoint.
  events_->add_session_start(first_step);
}

void RunDirectory::log_metrics(const io::Json& record) {
  if (writer_) metrics_->write(record);
}

void RunDirectory::log_scalar(const std::string& tag, double value, int64_t step) {
  if (writer_) events_->add_scalar(tag, value, step);
}

void RunDirectory::flush_scalars() {
  if (writer_) events_->flush();
}

void RunDirectory::save_checkpoint(Task& task, const AdamW& optimizer, const TrainerState& state,
                                   const io::Json& hyperparameters, const fs::path& model_files,
                                   int64_t save_total_limit) {
  if (!writer_) return;
  train::save_checkpoint(root_, task, optimizer, state, hyperparameters, model_files);
  rotate_checkpoints(root_, save_total_limit, state.best_checkpoint_step);
}

void RunDirectory::keep_only_checkpoint(int64_t step) {
  if (writer_) train::keep_only_checkpoint(root_, step);
}

fs::path RunDirectory::stage_model(Task& task, const std::string& name) {
  fs::path tmp = root_ / name;
  std::error_code ec;
  fs::remove_all(tmp, ec);
  task.save_model(tmp);
  return tmp;
}

void RunDirectory::save_best_model(Task& task) {
  if (writer_) io::replace_directory(stage_model(task, ".tmp-best-model"), root_ / run_dir::kBestModel);
}

bool RunDirectory::has_best_model() const { return fs::exists(root_ / run_dir::kBestModel); }

void RunDirectory::use_best_model_as_final() {
  if (!writer_) return;
  fs::path model_dir = root_ / run_dir::kModel;
  std::error_code ec;
  fs::remove_all(model_dir, ec);
  fs::copy(root_ / run_dir::kBestModel, model_dir, fs::copy_options::recursive);
}

fs::path RunDirectory::stage_final_model(Task& task) {
  return writer_ ? stage_model(task, ".tmp-model") : fs::path();
}

void RunDirectory::publish_final_model(const fs::path& staged) {
  if (writer_) io::replace_directory(staged, root_ / run_dir::kModel);
}

void RunDirectory::write_results(const io::Json& train_results, const io::Json& eval_results) {
  if (!writer_) return;
  io::write_json_file(root_ / run_dir::kTrainResults, train_results);
  io::Json all = train_results;
  if (!eval_results.is_null()) {
    io::write_json_file(root_ / run_dir::kEvalResults, eval_results);
    for (auto it = eval_results.begin(); it != eval_results.end(); ++it)
      if (it.value().is_number()) all["eval_" + it.key()] = it.value();
  }
  io::write_json_file(root_ / run_dir::kAllResults, all);
}

}  // namespace em::train
