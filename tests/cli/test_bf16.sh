#!/usr/bin/env bash
# bf16 for every algorithm: `em-train --bf16` runs and its logged loss falls; em-predict with --bf16 agrees with fp32
# (--precision fp32) on the same model within docs/devices.md's tolerances, and bf16 really ran (the log says so, and
# the scores are not bit-identical); --precision auto picks what docs/devices.md says for this CPU and logs why;
# conflicting flags exit 2; em-serve reports the precision in its model metadata and /health; em-eval logs it.
#
# Tolerances (bf16 keeps 8 significant bits: each rounding is off by up to 2^-9 = 0.2% relative, and a forward pass
# of these models compounds a few of them; measured on an AMD EPYC with AVX-512-BF16, see docs/devices.md):
#   classification  top-1 label equal (unless fp32's top-2 are closer than 0.05), every score within 0.05 absolute
#   segmentation    >= 95% of the label-map pixels the same label
#   detection       every fp32 box of the top 5 has a bf16 box of the same label with score within 0.05 and IoU >= 0.9
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq is not installed (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"
camvid=${EM_SHARED:-}/data/camvid-mini coco=${EM_SHARED:-}/data/coco-mini
[[ -f $camvid/train/train.json && -f $coco/train/_annotations.coco.json ]] ||
  skip "$camvid or $coco is absent (../shared is only in the team's checkouts and CI)"
make_fashion_dataset "$T/fashion" 48 24

# The precision auto should choose on this CPU, per algorithm (docs/devices.md: bf16 only with AMX-BF16, and there
# only for classification, the one algorithm measured faster on an AMX CPU).
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
amx=no
[[ " $flags " == *" amx_bf16 "* && " $flags " == *" amx_tile "* ]] && amx=yes
auto_precision() { [[ $amx == yes && $1 == classification ]] && echo bf16 || echo fp32; }
echo "this CPU: AMX-BF16 $amx"

# loss_falls RUN: the mean of the last 3 logged losses is below 0.9x the mean of the first 3.
loss_falls() {
  local first last
  first=$(jq -s '[.[] | select(.loss != null)] | .[0:3] | map(.loss) | add / 3' "$1/metrics.jsonl")
  last=$(jq -s '[.[] | select(.loss != null)] | .[-3:] | map(.loss) | add / 3' "$1/metrics.jsonl")
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.9) }' && pass "$2: the bf16 loss falls ($first -> $last)" ||
    fail "$2: the bf16 loss did not fall: $first -> $last"
}
# train_bf16 NAME ARGS...: em-train --bf16 into $T/NAME, logged to $T/NAME.err (the log must say bf16).
train_bf16() {
  local name=$1; shift
  expect_exit 0 "$name: em-train --bf16 runs" -- "$EM_BIN/em-train" "$@" --bf16 --threads 1 --num_workers 1 \
    --eval_strategy no --save_steps 100000 --output_dir "$T/$name"
  jq -e '.bf16 == true' "$T/$name/hyperparameters.json" >/dev/null && pass "$name: hyperparameters.json records bf16" ||
    fail "$name: hyperparameters.json: $(jq -c '{bf16}' "$T/$name/hyperparameters.json")"
  loss_falls "$T/$name" "$name"
}
# predict_both NAME ALGO MODEL ARGS...: em-predict --bf16 -> $T/NAME.bf16 and --precision fp32 -> $T/NAME.fp32, checking
# each log's precision line; then the default (auto) -> $T/NAME.auto with the line auto gives on this CPU.
predict_both() {
  local name=$1 algo=$2 model=$3 want; shift 3
  expect_exit 0 "$name: em-predict --bf16" -- "$EM_BIN/em-predict" --model "$model" --threads 1 --bf16 "$@"
  cp "$T/out" "$T/$name.bf16"
  expect_stderr 'precision: bf16 \(asked\)' "$name: the log says bf16 ran"
  expect_exit 0 "$name: em-predict --precision fp32" -- "$EM_BIN/em-predict" --model "$model" --threads 1 --precision fp32 "$@"
  cp "$T/out" "$T/$name.fp32"
  expect_stderr 'precision: fp32 \(asked\)' "$name: the log says fp32 ran"
  want=$(auto_precision "$algo")
  expect_exit 0 "$name: em-predict (default --precision auto)" -- "$EM_BIN/em-predict" --model "$model" --threads 1 "$@"
  cp "$T/out" "$T/$name.auto"
  if [[ $amx == yes ]]; then
    expect_stderr "precision: $want \\(auto: AMX present" "$name: auto chose $want (AMX present)"
  else
    expect_stderr "precision: fp32 \\(auto: no AMX-BF16 on this CPU" "$name: auto chose fp32 and says why (no AMX)"
  fi
  cmp -s "$T/$name.auto" "$T/$name.$want" && pass "$name: auto's answer is the $want answer, byte for byte" ||
    fail "$name: auto's answer differs from --precision $want's"
  if cmp -s "$T/$name.bf16" "$T/$name.fp32"; then fail "$name: bf16 and fp32 answers are bit-identical: bf16 did not run"; fi
}

# 1. Classification: a tiny ResNet on Fashion-MNIST (48 images, 36 steps of 8, loss logged every 2 steps).
write_tiny_resnet_config "$T/resnet.json"
train_bf16 cls --algo classification --data "$T/fashion" --model_config "$T/resnet.json" -q \
  --per_device_train_batch_size 8 --learning_rate 3e-3 --logging_steps 2 --num_train_epochs 6
imgs=("$T"/fashion/validation/*/*.png)
predict_both cls classification "$T/cls/model" --top_k 0 "${imgs[@]:0:8}"  # --top_k 0: every label's score
python3 - "$T/cls.fp32" "$T/cls.bf16" <<'PY' && pass "classification: top-1 as fp32, scores within 0.05" || fail "classification"
import json, sys
fp32 = [json.loads(l) for l in open(sys.argv[1])]
bf16 = [json.loads(l) for l in open(sys.argv[2])]
assert len(fp32) == len(bf16) == 8, (len(fp32), len(bf16))
worst = 0.0
for a, b in zip(fp32, bf16):
    pa, pb = a["predictions"], b["predictions"]
    sa, sb = {p["label"]: p["score"] for p in pa}, {p["label"]: p["score"] for p in pb}
    assert sa.keys() == sb.keys()
    worst = max(worst, max(abs(sa[k] - sb[k]) for k in sa))
    if pa[0]["score"] - pa[1]["score"] >= 0.05:
        assert pa[0]["label"] == pb[0]["label"], (a["image"], pa[:2], pb[:2])
print(f"classification: largest score difference {worst:.4f}")
assert worst <= 0.05, worst
PY

# 2. Segmentation: a tiny SegFormer at 64x64 on CamVid (40 images, 20 steps of 4, loss logged every step).
cat >"$T/segformer.json" <<'JSON'
{"model_type": "segformer", "num_encoder_blocks": 4, "depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 48, 64],
 "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2],
 "mlp_ratios": [2, 2, 2, 2], "decoder_hidden_size": 32}
JSON
train_bf16 seg --algo segmentation --data "$camvid" --model_config "$T/segformer.json" --image_size 64 -q \
  --per_device_train_batch_size 4 --learning_rate 2e-3 --logging_steps 1 --num_train_epochs 2
seg_imgs=("$camvid"/validation/images/*)
mkdir -p "$T/maps.bf16" "$T/maps.fp32"
expect_exit 0 "segmentation: em-predict --bf16 --output_dir" -- "$EM_BIN/em-predict" --model "$T/seg/model" --threads 1 \
  --bf16 --output_dir "$T/maps.bf16" "${seg_imgs[@]:0:4}"
expect_stderr 'precision: bf16 \(asked\)' "segmentation: the log says bf16 ran"
expect_exit 0 "segmentation: em-predict --precision fp32 --output_dir" -- "$EM_BIN/em-predict" --model "$T/seg/model" \
  --threads 1 --precision fp32 --output_dir "$T/maps.fp32" "${seg_imgs[@]:0:4}"
expect_stderr 'precision: fp32 \(asked\)' "segmentation: the log says fp32 ran"
expect_exit 0 "segmentation: em-predict (auto)" -- "$EM_BIN/em-predict" --model "$T/seg/model" --threads 1 "${seg_imgs[@]:0:1}"
expect_stderr "precision: $(auto_precision segmentation) \\(auto: " "segmentation: auto chose $(auto_precision segmentation)"
if /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
  /usr/bin/python3 - "$T/maps.fp32" "$T/maps.bf16" <<'PY' && pass "segmentation: >= 95% of pixels as fp32" || fail "segmentation"
import os, sys
import numpy as np
from PIL import Image
same = total = 0
for name in sorted(os.listdir(sys.argv[1])):
    a = np.asarray(Image.open(os.path.join(sys.argv[1], name)))
    b = np.asarray(Image.open(os.path.join(sys.argv[2], name)))
    assert a.shape == b.shape, (name, a.shape, b.shape)
    same += int((a == b).sum()); total += a.size
assert total > 0
print(f"segmentation: {same / total:.4%} of {total} pixels agree")
assert same >= 0.95 * total
PY
else
  echo "(no /usr/bin/python3 with PIL and numpy: the pixel agreement check is skipped)"
fi

# 3. Detection: a tiny DETR (resnet18 backbone, d_model 64) at 64 px on coco-mini, 40 steps of 2, logged every 4.
cat >"$T/detr.json" <<'JSON'
{"model_type": "detr", "backbone": "resnet18", "d_model": 64, "encoder_layers": 2, "decoder_layers": 2,
 "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
 "num_queries": 48, "dropout": 0.0, "auxiliary_loss": true}
JSON
train_bf16 det --algo detection --data "$coco" --model_config "$T/detr.json" --image_size 64 --augmentation none -q \
  --per_device_train_batch_size 2 --learning_rate 1e-3 --weight_decay 0 --logging_steps 4 --num_train_epochs 40
det_imgs=("$coco"/validation/*.jpg)
predict_both det detection "$T/det/model" --threshold 0 "${det_imgs[@]}"
python3 - "$T/det.fp32" "$T/det.bf16" <<'PY' && pass "detection: fp32's top 5 boxes in bf16's answer" || fail "detection"
import json, sys
def iou(a, b):
    iw = min(a["xmax"], b["xmax"]) - max(a["xmin"], b["xmin"])
    ih = min(a["ymax"], b["ymax"]) - max(a["ymin"], b["ymin"])
    inter = max(iw, 0) * max(ih, 0)
    area = lambda r: (r["xmax"] - r["xmin"]) * (r["ymax"] - r["ymin"])
    return inter / (area(a) + area(b) - inter) if inter > 0 else 0.0
fp32 = [json.loads(l) for l in open(sys.argv[1])]
bf16 = [json.loads(l) for l in open(sys.argv[2])]
assert len(fp32) == len(bf16) == 2
for a, b in zip(fp32, bf16):
    top = sorted(a["predictions"], key=lambda p: -p["score"])[:5]
    assert top, a
    for p in top:
        assert any(q["label"] == p["label"] and abs(q["score"] - p["score"]) <= 0.05 and iou(p["box"], q["box"]) >= 0.9
                   for q in b["predictions"]), (a["image"], p)
print("detection: top-5 boxes matched")
PY

# 4. Flags: --bf16 is --precision bf16; a conflict or an unknown word exits 2 before anything loads.
expect_exit 2 "em-predict --bf16 --precision fp32 exits 2" -- \
  "$EM_BIN/em-predict" --model "$T/cls/model" --bf16 --precision fp32 "${imgs[0]}"
expect_stderr '--bf16 and --precision fp32' "  ... naming both flags"
expect_exit 0 "em-predict --bf16 --precision bf16 agree" -- \
  "$EM_BIN/em-predict" --model "$T/cls/model" --bf16 --precision bf16 --threads 1 "${imgs[0]}"
expect_exit 2 "em-predict --precision fp16 exits 2" -- "$EM_BIN/em-predict" --model "$T/cls/model" --precision fp16 "${imgs[0]}"
expect_exit 2 "em-serve --bf16 --precision auto exits 2" -- \
  "$EM_BIN/em-serve" --model "$T/cls/model" --bf16 --precision auto --port 0
expect_stderr '--bf16 and --precision auto' "  ... naming both flags"
expect_exit 2 "em-eval --bf16 --precision fp32 exits 2" -- \
  "$EM_BIN/em-eval" --model "$T/cls/model" --data "$T/fashion" --bf16 --precision fp32

# 5. em-eval logs the precision; bf16 and fp32 metrics are both there.
expect_exit 0 "em-eval --bf16" -- "$EM_BIN/em-eval" --model "$T/cls/model" --data "$T/fashion" --threads 1 --bf16
expect_stderr 'precision: bf16 \(asked\)' "em-eval logs bf16"
jq -e '.accuracy | type == "number"' "$T/out" >/dev/null && pass "em-eval --bf16 prints metrics" ||
  fail "em-eval: $(head -c 300 "$T/out")"
expect_exit 0 "em-eval (auto)" -- "$EM_BIN/em-eval" --model "$T/seg/model" --data "$camvid" --threads 1
expect_stderr "precision: $(auto_precision segmentation) \\(auto: " "em-eval logs auto's choice for segmentation"

# 6. em-serve: the V2 model metadata and /health carry the precision.
if command -v curl >/dev/null; then
  model=$T/cls/model
  start_server bf16 --bf16
  grep -q 'precision: bf16 (asked)' "$log" && pass "em-serve logs bf16" || fail "em-serve log: $(head -c 600 "$log")"
  curl -s "$url/health" >"$T/health.json"
  jq -e '.precision == "bf16"' "$T/health.json" >/dev/null && pass "em-serve /health: precision bf16" ||
    fail "/health: $(head -c 400 "$T/health.json")"
  name=$(jq -r '.models | keys[0]' "$T/health.json")
  curl -s "$url/v2/models/$name" >"$T/meta.json"
  jq -e '.parameters.precision == "bf16" and .parameters.algo == "classification" and .platform == "emkit_libtorch"' \
    "$T/meta.json" >/dev/null && pass "em-serve /v2/models/$name: parameters.precision bf16" ||
    fail "metadata: $(head -c 400 "$T/meta.json")"
  kill "$pid"; wait "$pid" || true
  start_server auto
  curl -s "$url/health" >"$T/health.json"
  jq -e --arg p "$(auto_precision classification)" '.precision == $p' "$T/health.json" >/dev/null &&
    pass "em-serve (auto) reports $(auto_precision classification)" || fail "/health: $(head -c 400 "$T/health.json")"
  kill "$pid"; wait "$pid" || true
fi
finish
