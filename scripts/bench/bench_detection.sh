#!/usr/bin/env bash
# DETR-ResNet-50 on CPU: training images/s (em-bench-train-compute --algo detection: DetectionTask batches in memory,
# loss with auxiliary losses, backward, clip 0.1, AdamW with the 0.1x backbone group) and single-image inference latency
# (em-bench-predict: em-predict's path, decode -> resize -> forward -> post-processing), fp32 and --bf16,
# at 800x1333 (DETR's default) and at a small size, with each process's peak memory (max RSS).
# The images are synthetic 1333x800 PNGs with COCO boxes (their content does not change the cost). Run on a quiet
# machine; note `uptime` before and after:
#   scripts/bench/bench_detection.sh [--threads 2] [--small 384] [--batch 2] [--steps 3] [--runs 5] [--build build]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=2 small=384 batch=2 steps=3 runs=5 build=$root/build model_config=detr-resnet-50
while (($#)); do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --small) small=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --model_config) model_config=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/em-bench-det.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A dataset of 4 synthetic 1333x800 images (noise + rectangles) with 5 boxes each over 3 categories.
/usr/bin/python3 - "$work/data" <<'PY'
import json, os, struct, sys, zlib
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
W, H = 1333, 800
def png(path, pixels):
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
for split in ("train", "validation"):
    os.makedirs(f"{out}/{split}", exist_ok=True)
    images, anns = [], []
    for i in range(4):
        pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": W, "height": H})
        for k in range(5):
            w, h = int(rng.integers(40, 400)), int(rng.integers(40, 400))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            pixels[y:y + h, x:x + w] = rng.integers(0, 256, 3, dtype=np.uint8)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(rng.integers(1, 4)),
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        png(f"{out}/{split}/{i}.png", pixels)
    json.dump({"images": images, "annotations": anns,
               "categories": [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)]},
              open(f"{out}/{split}/_annotations.coco.json", "w"))
PY

# peak MEASURE...: runs the command under /usr/bin/time -v; prints stdout JSON + "max_rss_mib".
peak() {
  /usr/bin/time -v "$@" 2>"$work/time.err" >"$work/out.json" || { tail -5 "$work/time.err" >&2; return 1; }
  local kb
  kb=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$work/time.err")
  jq -c --argjson mib "$((kb / 1024))" '. + {max_rss_mib: $mib}' "$work/out.json"
}

echo "uptime before: $(uptime)"
echo "model $model_config, $threads threads, batch $batch, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
printf '%-10s %-5s %-12s %14s %12s %14s %14s %12s\n' size dtype input "train img/s" "train MiB" "predict ms" "forward ms" "predict MiB"
for size in 800 "$small"; do
  # A model folder at this input size (one training step: the weights do not change the timing).
  "$bin/em-train" --algo detection --data "$work/data" --output_dir "$work/model-$size" --model_config "$model_config" \
    --image_size "$size" --per_device_train_batch_size 1 --num_train_epochs 0.25 --eval_strategy no \
    --threads "$threads" -q >/dev/null
  for dtype in fp32 bf16; do
    train_bf16=(); infer_bf16=()
    [[ $dtype == bf16 ]] && train_bf16=(--bf16 true) infer_bf16=(--bf16)
    train=$(peak "$bin/em-bench-train-compute" --algo detection --data "$work/data" --output_dir "$work/x" \
      --model_config "$model_config" --image_size "$size" --augmentation none --per_device_train_batch_size "$batch" \
      --num_workers 0 --steps "$steps" --warmup 1 --threads "$threads" -q "${train_bf16[@]}")
    infer=$(peak "$bin/em-bench-predict" --model "$work/model-$size/model" --image "$work/data/validation/0.png" \
      --size 0 --runs "$runs" --warmup 1 --threads "$threads" -q "${infer_bf16[@]}")
    input="${size}x$(( (1333 * size + 400) / 800 ))"  # height x width of the 1333x800 images after DETR's resize
    printf '%-10s %-5s %-12s %14.2f %12d %14.0f %14.0f %12d\n' "$size" "$dtype" "$input" \
      "$(jq .images_per_second <<<"$train")" "$(jq .max_rss_mib <<<"$train")" \
      "$(jq .end_to_end_ms.median <<<"$infer")" "$(jq .prepared_ms.median <<<"$infer")" "$(jq .max_rss_mib <<<"$infer")"
    echo "  train: $train" >&2
    echo "  predict: $infer" >&2
  done
done
echo "uptime after: $(uptime)"
