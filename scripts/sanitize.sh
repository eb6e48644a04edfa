#!/usr/bin/env bash
# The whole test suite (unit and CLI tests) on an ASan+UBSan build of emkit, in build-asan/. Run before every resolve
# (docs/reliability.md): CI's time does not allow it (a cold sanitized build takes ~40 min on the 2-core machines, the
# suite ~2x longer than unsanitized).
# Usage: scripts/sanitize.sh [CTEST_ARGS...]       e.g. scripts/sanitize.sh -R 'cli.test_serve'
#   EM_SANITIZE_BUILD=DIR   build folder (default build-asan/)
# Sanitizer reports go to files, not to the tools' stderr (which the CLI tests read): DIR/sanitizer-logs/. The script
# prints every report and exits 1 when there is one, or when a test fails; 0 means the suite passed with zero reports.
# LibTorch is not instrumented (Debian's build); emkit's code and the LibTorch/c10 headers it inlines are. Leak
# detection is off: LibTorch keeps its operator registries and thread pools until exit by design.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EM_SANITIZE_BUILD:-$root/build-asan}

# -O1 with line tables: readable stacks, a build that costs ~half of -O2's time.
nice -n 5 cmake -S "$root" -B "$build" -G Ninja -DEM_SANITIZE=ON -DEM_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" >/dev/null
nice -n 5 cmake --build "$build" -j "${EM_BUILD_JOBS:-2}"

logs=$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
# abort_on_error: a report ends the process with SIGABRT (a test sees a crash, never a quiet exit 1).
# UBSan reports do not stop the process (the suite keeps going); each lands in a log file counted below.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$logs/asan:detect_stack_use_after_return=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/ubsan:${UBSAN_OPTIONS:-}"
status=0
if (($#)); then
  (cd "$build" && ctest --output-on-failure -j "${EM_TEST_JOBS:-2}" --timeout 2400 "$@") || status=1
else
  # The unit tests in one process (ctest starts one per test case: ~2.5 s each of LibTorch + ASan start-up), then
  # the CLI tests and the rest through ctest. Exit 77 of the unit binary is its shared/-absent skips.
  (cd "$build" && EM_SHARED=${EM_SHARED:-$root/../shared} ./tests/em_unit_tests --order decl) || {
    rc=$?
    ((rc == 77)) || { echo "sanitize.sh: unit tests failed (exit $rc)" >&2; status=1; }
  }
  (cd "$build" && ctest --output-on-failure -j "${EM_TEST_JOBS:-2}" --timeout 2400 -R '^(cli|unit)\.') || status=1
fi

reports=$(find "$logs" -type f | sort)
if [[ -n $reports ]]; then
  echo "sanitize.sh: $(echo "$reports" | wc -l) sanitizer report file(s):" >&2
  for f in $reports; do echo "== $f" >&2; head -n 60 "$f" >&2; done
  status=1
fi
if ((status == 0)); then echo "sanitize.sh: the suite passed under ASan+UBSan with zero reports"; fi
exit $status
