#!/usr/bin/env bash
# The cost of data-parallel training on this host: em-train ResNet-50 at 28 px, batch 16 per process, 1 thread per
# process, as 1 process and as 2 processes (--nproc_per_node 2, Gloo on loopback), the two alternating --repeat
# times. Prints images/s of each (train_samples_per_second: the whole run's images over its training time), the
# speed-up, and the time per step that the 2-process run waited for its gradient all-reduce after backward
# (ddp_wait_s_per_step: the communication backward did not hide). Run on a quiet machine:
#   scripts/bench/bench_ddp.sh [--images 1280] [--repeat 3] [--build build]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
images=1280 repeat=3 build=$root/build
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench-ddp.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 "$root/scripts/fashion_mnist_to_folder.py" --train "$images" --validation 16 "$work/data" >/dev/null 2>&1
run() {  # NPROC OUT
  rm -rf "$work/run"
  "$bin/em-train" --algo classification --data "$work/data" --output_dir "$work/run" --learning_rate 1e-3 \
    --per_device_train_batch_size 16 --num_train_epochs 1 --eval_strategy no --save_steps 1000000 --threads 1 \
    --num_workers 1 --nproc_per_node "$1" -q >"$2"
}
for r in $(seq 1 "$repeat"); do
  run 1 "$work/one$r.json"
  run 2 "$work/two$r.json"
done
python3 - "$work" "$repeat" <<'PY'
import json, statistics, sys
work, repeat = sys.argv[1], int(sys.argv[2])
one = [json.load(open(f"{work}/one{r}.json")) for r in range(1, repeat + 1)]
two = [json.load(open(f"{work}/two{r}.json")) for r in range(1, repeat + 1)]
ips1 = statistics.median(x["train_samples_per_second"] for x in one)
ips2 = statistics.median(x["train_samples_per_second"] for x in two)
wait = statistics.median(x["ddp_wait_s_per_step"] for x in two)
step2 = statistics.median(x["train_runtime"] / x["global_step"] for x in two)
print(f"1 process  x batch 16, 1 thread: {ips1:7.1f} img/s")
print(f"2 processes x batch 16, 1 thread each: {ips2:7.1f} img/s  ({ips2 / ips1:.2f}x)")
print(f"2 processes: {1e3 * step2:.0f} ms per step, of which {1e3 * wait:.1f} ms waiting for the gradient all-reduce "
      f"after backward ({100 * wait / step2:.1f}%)")
print(json.dumps({"images_per_s_1": ips1, "images_per_s_2": ips2, "speedup": ips2 / ips1,
                  "step_s_2": step2, "ddp_wait_s_per_step": wait}))
PY
