// em-train --nproc_per_node N: a data-parallel run of N processes on this host without Python, like
// `torchrun --standalone --nproc_per_node N`. The workers are this program again, with the torchrun variables set
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port).
#pragma once
#include <string>
#include <vector>

namespace em::dist {

// Runs `argv` (argv[0] is replaced by this executable) as `nproc` workers and waits for them. SIGINT/SIGTERM to this
// process are forwarded once to every worker (each worker is in its own process group, so a terminal's Ctrl-C
// reaches them only through here, once). When a worker fails, the others get a few seconds to notice on their own
// (they name the lost rank), then SIGTERM, then SIGKILL. Returns the exit status of the first worker that failed
// (128 + N for a signal), else 0. `threads_per_worker` > 0 sets OMP_NUM_THREADS for workers that have none.
int run_local_workers(int nproc, const std::vector<std::string>& argv, int threads_per_worker);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed).
int free_local_port();

}  // namespace em::dist
