#!/usr/bin/env python3
"""torchrun_agent.py PORT NPROC CMD...: starts NPROC copies of CMD the way torchrun's static rendezvous does
(torch/distributed/elastic/agent/server/local_elastic_agent.py, PyTorch 1.13): the agent hosts the TCPStore at
MASTER_ADDR:MASTER_PORT and each worker gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, ROLE_RANK,
MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT and TORCHELASTIC_USE_AGENT_STORE=True. For Debian 12, whose
python3-torch 1.13 launcher fails under Python 3.11 before it starts any worker (Std.from_str returns None:
"'NoneType' object has no attribute 'get'"). Needs /usr/bin/python3 (python3-torch). Exit: the first non-zero
worker status, else 0."""
import os
import subprocess
import sys
from datetime import timedelta

import torch.distributed as dist


def main():
    port, nproc, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    store = dist.TCPStore("127.0.0.1", port, nproc, True, timedelta(seconds=60), wait_for_workers=False)
    procs = []
    for rank in range(nproc):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                   LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK="0", ROLE_RANK=str(rank), ROLE_NAME="default",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TORCHELASTIC_RESTART_COUNT="0",
                   TORCHELASTIC_MAX_RESTARTS="0", TORCHELASTIC_USE_AGENT_STORE="True", OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(cmd, env=env))
    codes = [p.wait() for p in procs]
    del store
    return next((c for c in codes if c != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
