#!/usr/bin/env bash
# em-train vs the Python PyTorch baseline (scripts/bench/train_baseline.py: torchvision resnet50, ImageFolder,
# DataLoader, torch.optim.AdamW) on the same Fashion-MNIST PNG folder, as whole processes, per cell
# (input size x precision), plus em-train's loop against its own compute-only throughput (em-bench-train-compute).
#
# A cell is SIZE:IMAGES[:finetune]: ResNet-50 at input SIZE, one epoch over IMAGES training images, batch --batch,
# AdamW lr 1e-3 with linear decay, gradient clipping at 1.0. finetune: both sides start from the same seeded random
# torchvision resnet50 weights (made once by train_baseline.py --make_init; em-train --init FILE.pth --model_config
# resnet-50, Python load_state_dict), else each side initialises its own. Each cell runs in fp32 and/or bf16 autocast
# (em-train --bf16, Python torch.autocast("cpu", bfloat16) over the forward) as --precisions says.
# Both sides use --threads compute threads and 2 data-loading workers (em-train threads, Python processes), and do the
# same data work per image: decode the PNG (28x28 grey) to RGB, resize to SIZE x SIZE (bilinear), flip half of them,
# normalise (ImageNet mean/std), shuffled batches.
# Every cell's em-train/Python pair runs --repeat times, all cells interleaved in each round (a shared 2-core VM drifts
# by +-10% between minutes); the table gives medians. Defaults take ~15 min on 2 cores (224: 192 images = 12 steps).
#   scripts/bench/bench_train_classification.sh [--cell 28:2000 --cell 224:192:finetune] [--precisions "fp32 bf16"]
#     [--batch 16] [--threads 2] [--repeat 3] [--no_compute] [--build build]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cells=() precisions="fp32 bf16" batch=16 threads=2 repeat=3 compute=1 build=$root/build
while (($#)); do
  case $1 in
    --cell) cells+=("$2"); shift 2 ;;
    --precisions) precisions=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no_compute) compute=0; shift ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
((${#cells[@]})) || cells=(28:2000 224:192:finetune)
bin=$build/bin
py=/usr/bin/python3  # Debian's torch + torchvision
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

for c in "${cells[@]}"; do
  IFS=: read -r size images mode <<<"$c"
  [[ $size =~ ^[0-9]+$ && $images =~ ^[0-9]+$ && ( -z ${mode:-} || $mode == finetune ) ]] ||
    { echo "--cell $c: expected SIZE:IMAGES[:finetune]" >&2; exit 2; }
  [[ -d $work/data$images ]] ||
    python3 "$root/scripts/fashion_mnist_to_folder.py" --train "$images" --validation 100 "$work/data$images" \
      >/dev/null 2>&1
done
num_labels=$(find "$work/data$images/train" -mindepth 1 -maxdepth 1 -type d | wc -l)
"$py" "$root/scripts/bench/train_baseline.py" - --make_init "$work/init.pth" "$num_labels" --seed 42

{
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; flags: $(grep -m1 -o -w -E \
    'avx2|avx512f|avx512_bf16|amx_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')$(grep -q -w amx_tile \
    /proc/cpuinfo || echo '(no AMX)')"
  echo "torch (Python): $("$py" -c 'import torch, torchvision; print(torch.__version__, "torchvision", torchvision.__version__)')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$work/header"

now() { date +%s.%N; }
# run CELL_ID SIDE PRECISION SIZE IMAGES MODE ROUND: one whole process, its wall time and its JSON line.
run() {
  local id=$1 side=$2 prec=$3 size=$4 images=$5 mode=$6 r=$7 t0 t1 args=()
  t0=$(now)
  if [[ $side == em ]]; then
    [[ $prec == bf16 ]] && args+=(--bf16)
    [[ $mode == finetune ]] && args+=(--init "$work/init.pth" --model_config resnet-50)
    rm -rf "$work/run"
    "$bin/em-train" --algo classification --data "$work/data$images" --output_dir "$work/run" --input_size "$size" \
      --per_device_train_batch_size "$batch" --learning_rate 1e-3 --num_train_epochs 1 --eval_strategy no \
      --save_steps 1000000 --threads "$threads" --num_workers 2 "${args[@]}" -q >"$work/out" 2>"$work/err" ||
      { cat "$work/err" >&2; exit 1; }
  else
    [[ $prec == bf16 ]] && args+=(--bf16)
    [[ $mode == finetune ]] && args+=(--init "$work/init.pth")
    "$py" "$root/scripts/bench/train_baseline.py" "$work/data$images" --input_size "$size" --batch_size "$batch" \
      --epochs 1 --threads "$threads" --workers 2 "${args[@]}" >"$work/out" 2>"$work/err" ||
      { cat "$work/err" >&2; exit 1; }
  fi
  t1=$(now)
  echo "$id $side $r $t0 $t1 $(cat "$work/out")" >>"$work/runs"
  awk -v s="$side" -v a="$t0" -v b="$t1" -v n="$images" 'BEGIN { printf "  %s %.1f s, %.1f img/s\n", s, b - a, n / (b - a) }' >&2
}

ids=()
for c in "${cells[@]}"; do
  IFS=: read -r size images mode <<<"$c"
  for prec in $precisions; do ids+=("$size:$images:${mode:-scratch}:$prec"); done
done
for r in $(seq 1 "$repeat"); do
  for id in "${ids[@]}"; do
    IFS=: read -r size images mode prec <<<"$id"
    echo "round $r/$repeat: $id" >&2
    run "$id" em "$prec" "$size" "$images" "$mode" "$r"
    run "$id" py "$prec" "$size" "$images" "$mode" "$r"
  done
done
if ((compute)); then
  for id in "${ids[@]}"; do
    IFS=: read -r size images mode prec <<<"$id"
    args=()
    [[ $prec == bf16 ]] && args+=(--bf16)
    steps=$(( (images + batch - 1) / batch )); ((steps > 30)) && steps=30
    "$bin/em-bench-train-compute" --algo classification --data "$work/data$images" --output_dir "$work/x" \
      --input_size "$size" --per_device_train_batch_size "$batch" --learning_rate 1e-3 --threads "$threads" \
      --steps "$steps" --warmup 3 "${args[@]}" -q 2>/dev/null | sed "s/^/$id /" >>"$work/compute"
  done
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/header"

python3 - "$work" "$batch" "$threads" "$repeat" <<'PY'
import json, statistics, sys
work, batch, threads, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(open(f"{work}/header").read().rstrip())
print(f"ResNet-50, batch {batch}, 1 epoch, {threads} threads + 2 loader workers per side, {repeat} alternating rounds; "
      "img/s = images / whole-process seconds (start-up and saving included), loop = the side's own in-loop figure")
runs = {}
for line in open(f"{work}/runs"):
    cid, side, r, t0, t1, js = line.split(" ", 5)
    runs.setdefault(cid, {}).setdefault(side, []).append((float(t1) - float(t0), json.loads(js)))
compute = {}
try:
    for line in open(f"{work}/compute"):
        cid, js = line.split(" ", 1)
        compute[cid] = json.loads(js)
except FileNotFoundError:
    pass
print("| input | start | precision | images | em-train img/s (loop) | Python img/s (loop) | ratio per round | "
      "median ratio | em-train compute-only img/s |")
print("|---|---|---|---|---|---|---|---|---|")
for cid, sides in runs.items():
    size, images, mode, prec = cid.split(":")
    images = int(images)
    em, py = sides["em"], sides["py"]
    ratios = [p[0] / e[0] for e, p in zip(em, py)]
    em_s = statistics.median(t for t, _ in em); py_s = statistics.median(t for t, _ in py)
    em_loop = statistics.median(j["train_samples_per_second"] for _, j in em)
    py_loop = statistics.median(j["images_per_second"] for _, j in py)
    cp = compute.get(cid)
    cps = (f"{cp['images_per_second']:.1f} (loop at {100 * em_loop / cp['images_per_second']:.0f}%)" if cp else "-")
    print(f"| {size} | {'fine-tune' if mode == 'finetune' else 'scratch'} | {prec} | {images} | "
          f"{images / em_s:.1f} ({em_loop:.1f}) | {images / py_s:.1f} ({py_loop:.1f}) | "
          f"{', '.join(f'{x:.2f}' for x in ratios)} | **{statistics.median(ratios):.2f}x** | {cps} |")
for cid, cp in compute.items():
    print(f"  compute-only {cid}: ms per step " + ", ".join(f"{k} {v:.0f}" for k, v in cp["ms_per_step"].items()))
PY
