// Cooperative stop on SIGINT/SIGTERM: long work polls stop_requested() at safe points (end of a step),
// saves its state and throws em::Interrupted (exit 130). A second signal while stopping kills at once.
#pragma once

namespace em::signals {

void install_stop_handlers();
bool stop_requested();
int stop_signal();  // the signal number that asked for the stop, 0 if none
void request_stop(int signal_number);  // for tests and for in-process callers
void reset();

}  // namespace em::signals
