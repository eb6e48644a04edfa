#!/usr/bin/env bash
# Configures and builds emkit into build/ (Release, Ninja, ccache). Usage: scripts/build.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
# Two jobs: a LibTorch translation unit takes ~1.5 GB of memory and ~10 s.
cmake --build "$build" -j "${EM_BUILD_JOBS:-2}"
