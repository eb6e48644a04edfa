// Cooperative stop on SIGINT/SIGTERM, the one signal system of every tool: the first signal asks for a stop, which
// long work notices at a safe point and finishes in order (em-train saves a checkpoint and exits 130, em-serve
// answers the requests in flight and exits 0); a second signal restores the signal's default action and re-raises
// it, so the process dies of it at once (a shell reports 130 for SIGINT, 143 for SIGTERM).
#pragma once
#include <functional>
#include <thread>

namespace em::signals {

// em-train's line, written by the handler itself at the first signal.
inline constexpr const char* kCheckpointStopMessage =
    "\nstop requested: finishing the current step and saving a checkpoint (signal again to kill)\n";

// Installs the SIGINT and SIGTERM handlers. `message`, unless null, is written to stderr at the first signal by
// the handler (a string with static storage: nothing else may run there); null leaves the telling to a StopWatcher.
// Before this call a signal has its default action (the process ends at once).
void install_stop_handlers(const char* message = kCheckpointStopMessage);
// SIGINT and SIGTERM end the process at once (their default action), also where they were inherited as ignored (a
// background job of a script ignores SIGINT): for work that has no safe point yet, such as loading a model.
void restore_default_actions();
bool stop_requested();
int stop_signal();  // the signal number that asked for the stop, 0 if none
void request_stop(int signal_number);  // for tests and for in-process callers; wakes StopWatchers like a signal
void reset();

// Calls on_stop(signal number) once, on a thread of its own (ordinary code: it may lock, log and wait), when a stop
// is requested — also when that happened before the watcher was made. For work that waits rather than polls (a
// server blocked in accept). The destructor ends the thread when no stop came, after on_stop has returned if one did.
class StopWatcher {
 public:
  explicit StopWatcher(std::function<void(int)> on_stop);
  ~StopWatcher();
  StopWatcher(const StopWatcher&) = delete;
  StopWatcher& operator=(const StopWatcher&) = delete;

 private:
  int quit_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace em::signals
