#!/usr/bin/env bash
# em-train vs the Python PyTorch baseline (scripts/bench/train_baseline.py) on the same PNG folder, whole processes
# timed in one run, plus em-train's images/s against its own compute-only throughput (em-bench-train-compute).
# ResNet-50, input 28, batch 16, AdamW lr 1e-3, one epoch. The pair is run --repeat times, alternating, and the median
# ratio is reported (a shared 2-core VM drifts by +-10% between minutes). Run on a quiet machine:
#   scripts/bench/bench_train_classification.sh [--images 2000] [--threads 2] [--repeat 3] [--build build]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
images=2000 threads=2 repeat=3 build=$root/build
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 "$root/scripts/fashion_mnist_to_folder.py" --train "$images" --validation 100 "$work/data" >/dev/null 2>&1

now() { date +%s.%N; }
for r in $(seq 1 "$repeat"); do
  rm -rf "$work/run"
  t0=$(now)
  "$bin/em-train" --algo classification --data "$work/data" --output_dir "$work/run" --learning_rate 1e-3 \
    --num_train_epochs 1 --eval_strategy no --save_steps 1000000 --threads "$threads" -q >"$work/em$r.json"
  t1=$(now)
  /usr/bin/python3 "$root/scripts/bench/train_baseline.py" "$work/data" --epochs 1 --threads "$threads" \
    --workers 2 >"$work/py$r.json"
  t2=$(now)
  echo "$t0 $t1 $t2" >"$work/times$r"
done
steps=$(( (images + 15) / 16 ))
"$bin/em-bench-train-compute" --algo classification --data "$work/data" --output_dir "$work/x" \
  --learning_rate 1e-3 --threads "$threads" --steps "$steps" -q 2>/dev/null >"$work/compute.json"

python3 - "$work" "$repeat" "$images" "$threads" <<'PY'
import json, statistics, sys
work, repeat, images, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cp = json.load(open(f"{work}/compute.json"))
print(f"ResNet-50, input 28, batch 16, {images} images, 1 epoch, {threads} threads, {repeat} alternating runs")
ratios, loops = [], []
for r in range(1, repeat + 1):
    t0, t1, t2 = map(float, open(f"{work}/times{r}").read().split())
    em = json.load(open(f"{work}/em{r}.json")); py = json.load(open(f"{work}/py{r}.json"))
    ratios.append((t2 - t1) / (t1 - t0)); loops.append(em["train_samples_per_second"])
    print(f"  run {r}: em-train {t1 - t0:6.1f} s ({em['train_samples_per_second']:5.1f} img/s in the loop)   "
          f"python {t2 - t1:6.1f} s ({py['images_per_second']:5.1f} img/s)   ratio {ratios[-1]:.2f}x")
print(f"  speed ratio (whole process, python / em-train), median: {statistics.median(ratios):.2f}x")
print(f"  em-train compute-only: {cp['images_per_second']:.1f} img/s "
      f"(ms per step: {', '.join(f'{k} {v:.0f}' for k, v in cp['ms_per_step'].items())}); "
      f"em-train's loop reaches {100 * statistics.median(loops) / cp['images_per_second']:.0f}% of it")
PY
