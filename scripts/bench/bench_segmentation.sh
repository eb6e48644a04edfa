#!/usr/bin/env bash
# SegFormer (mit-b0, mit-b3) at 512x512 on this machine: training images/s (em-bench-train-compute: batches built once
# by the segmentation task and kept in memory, then em-train's forward, loss, backward, clipping and fused AdamW),
# prediction latency for one 512x512 image (em-bench-predict: the Predictor em-predict and em-serve use, end to end
# from PNG bytes and from the prepared tensor), fp32 and bf16 autocast, and each process's peak memory (max RSS from
# /usr/bin/time -v). The load average is printed before and after: run it on a quiet machine.
#   scripts/bench/bench_segmentation.sh [--threads 2] [--build build] [--models "mit-b0 mit-b3"] [--batch 2]
#                                       [--steps 3] [--runs 5] [--data ../shared/data/camvid-mini]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=2 build=$root/build models="mit-b0 mit-b3" batch=2 steps=3 runs=5 data=$root/../shared/data/camvid-mini
while (($#)); do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
[[ -f $data/train/train.json ]] || { echo "no segmentation dataset at $data (--data DIR)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is needed for peak memory (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench-seg.XXXXXX")
trap 'rm -rf "$work"' EXIT
image=$data/validation/images/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["image"].split("/",1)[1])' "$data/validation/validation.json")

# peak_kb FILE: "Maximum resident set size (kbytes): N" from /usr/bin/time -v.
peak_kb() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, --threads $threads" >&2
: >"$work/rows.jsonl"
for model in $models; do
  # A model folder of this architecture (one training step from scratch: the weights do not change the timing).
  "$bin/em-train" --algo segmentation --data "$data" --model_config "$model" --image_size 512 \
    --per_device_train_batch_size 1 --num_train_epochs 0.02 --eval_strategy no --threads "$threads" \
    --output_dir "$work/$model" -q >/dev/null
  for precision in fp32 bf16; do
    flag=() train_flag=()
    [[ $precision == bf16 ]] && flag=(--bf16) && train_flag=(--bf16 true)
    echo "$model $precision: training..." >&2
    /usr/bin/time -v "$bin/em-bench-train-compute" --algo segmentation --data "$data" --output_dir "$work/x" \
      --model_config "$model" --image_size 512 --per_device_train_batch_size "$batch" --steps "$steps" --warmup 1 \
      --threads "$threads" --num_workers 1 "${train_flag[@]}" -q >"$work/train.json" 2>"$work/train.time"
    echo "$model $precision: predicting..." >&2
    /usr/bin/time -v "$bin/em-bench-predict" --model "$work/$model/model" --image "$image" --size 512 --runs "$runs" \
      --warmup 1 --threads "$threads" "${flag[@]}" -q >"$work/predict.json" 2>"$work/predict.time"
    python3 - "$model" "$precision" "$work/train.json" "$(peak_kb "$work/train.time")" "$work/predict.json" \
      "$(peak_kb "$work/predict.time")" >>"$work/rows.jsonl" <<'PY'
import json, sys
model, precision, train, train_kb, predict, predict_kb = sys.argv[1:]
t, p = json.load(open(train)), json.load(open(predict))
print(json.dumps({"model": model, "precision": precision, "train_images_per_second": t["images_per_second"],
                  "train_batch_size": t["batch_size"], "train_peak_rss_mb": int(train_kb) / 1024,
                  "predict_end_to_end_ms": p["end_to_end_ms"]["median"], "predict_prepared_ms": p["prepared_ms"]["median"],
                  "predict_peak_rss_mb": int(predict_kb) / 1024}))
PY
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work/rows.jsonl" "$threads" "$batch" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"SegFormer at 512x512, {sys.argv[2]} threads; training batch {sys.argv[3]} (in-memory batches); prediction batch 1 (median)")
print(f"| model | precision | train img/s | train peak RSS | predict end to end | predict (prepared) | predict peak RSS |")
print(f"|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['precision']} | {r['train_images_per_second']:.3f} | {r['train_peak_rss_mb']:.0f} MB | "
          f"{r['predict_end_to_end_ms']:.0f} ms | {r['predict_prepared_ms']:.0f} ms | {r['predict_peak_rss_mb']:.0f} MB |")
PY
