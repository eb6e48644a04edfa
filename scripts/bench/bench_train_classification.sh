#!/usr/bin/env bash
# em-train vs the Python PyTorch baseline (scripts/bench/train_baseline.py) on the same PNG folder, whole processes
# timed in one run, plus em-train's images/s against its own compute-only throughput (em-bench-train-compute).
# ResNet-50, input 28, batch 16, AdamW lr 1e-3, one epoch. Run on a quiet machine:
#   scripts/bench/bench_train_classification.sh [--images 2000] [--threads 2] [--build build]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
images=2000 threads=2 build=$root/build
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 "$root/scripts/fashion_mnist_to_folder.py" --train "$images" --validation 100 "$work/data" >/dev/null 2>&1

now() { date +%s.%N; }
t0=$(now)
"$bin/em-train" --algo classification --data "$work/data" --output_dir "$work/run" --learning_rate 1e-3 \
  --num_train_epochs 1 --eval_strategy no --save_steps 1000000 --threads "$threads" -q >"$work/em.json"
t1=$(now)
/usr/bin/python3 "$root/scripts/bench/train_baseline.py" "$work/data" --epochs 1 --threads "$threads" \
  --workers 2 >"$work/py.json"
t2=$(now)
steps=$(( (images + 15) / 16 ))
"$bin/em-bench-train-compute" --algo classification --data "$work/data" --output_dir "$work/x" \
  --learning_rate 1e-3 --threads "$threads" --steps "$steps" -q 2>/dev/null >"$work/compute.json"

python3 - "$work" "$t0" "$t1" "$t2" "$images" "$threads" <<'PY'
import json, sys
work, t0, t1, t2, images, threads = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5]), int(sys.argv[6])
em = json.load(open(f"{work}/em.json")); py = json.load(open(f"{work}/py.json")); cp = json.load(open(f"{work}/compute.json"))
em_wall, py_wall = t1 - t0, t2 - t1
print(f"ResNet-50, input 28, batch 16, {images} images, 1 epoch, {threads} threads")
print(f"  em-train        whole process {em_wall:7.1f} s   loop {em['train_samples_per_second']:7.1f} img/s")
print(f"  python baseline whole process {py_wall:7.1f} s   loop {py['images_per_second']:7.1f} img/s")
print(f"  speed ratio (whole process, python / em-train): {py_wall / em_wall:.2f}x")
print(f"  em-train compute-only: {cp['images_per_second']:.1f} img/s; em-train reaches "
      f"{100 * em['train_samples_per_second'] / cp['images_per_second']:.0f}% of it")
PY
