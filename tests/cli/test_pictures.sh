#!/usr/bin/env bash
# Pictures from the tools (docs/em-predict.md#pictures---draw, docs/em-eval.md, docs/em-plot.md): em-predict --draw
# leaves the JSON unchanged and draws onto the image's own pixels (none changed when there is nothing to draw), names
# pictures as --output_dir names label maps and refuses the ambiguous outputs; em-eval --plots writes each
# algorithm's pictures; em-train writes plots/ at the end, em-plot redraws it from metrics.jsonl (also a cut line
# and grouped per-class values), and --overwrite_output_dir treats plots/ as the run's own folder. Pixel-exact
# drawing (box edges, mask overlays, confusion-matrix colours, UTF-8 names) is tested in tests/unit/draw.
source "$(dirname "$0")/lib.sh"
for tool in em-predict em-eval em-train em-plot; do [[ -x $EM_BIN/$tool ]] || skip "$tool is not built"; done
py=/usr/bin/python3
$py -c 'import PIL' 2>/dev/null || skip "Debian's python3-pil is not installed (scripts/setup.sh installs it)"
command -v jq >/dev/null || skip "jq is not installed (scripts/setup.sh installs it)"

# pix.py: PNG facts with Pillow. "size F" -> "W H"; "colours F" -> the number of distinct colours; "same A B" -> exit
# 0 when A and B have the same size and RGB pixels; "topng IN OUT" converts an image to PNG.
cat >"$T/pix.py" <<'PY'
import sys
from PIL import Image, ImageChops
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "size":
    print(*Image.open(args[0]).size)
elif cmd == "colours":
    print(len(Image.open(args[0]).convert("RGB").getcolors(1 << 24)))
elif cmd == "same":
    a, b = (Image.open(p).convert("RGB") for p in args)
    sys.exit(0 if a.size == b.size and ImageChops.difference(a, b).getbbox() is None else 1)
elif cmd == "topng":
    Image.open(args[0]).convert("RGB").save(args[1])
PY
pix() { $py "$T/pix.py" "$@"; }
# is_chart F: a PNG of chart size with lines, text and fills (not a blank canvas).
is_chart() {
  local size colours
  size=$(pix size "$1" 2>/dev/null) || { fail "$1: not a readable PNG"; return; }
  colours=$(pix colours "$1")
  if (( ${size% *} >= 300 && ${size#* } >= 200 && colours >= 3 )); then pass "$(basename "$1"): a ${size/ /x} chart, $colours colours"
  else fail "$(basename "$1"): size $size, $colours colours"; fi
}

# ---- classification: em-train's plots/, em-plot, em-eval --plots, em-predict --draw ----
train_tiny_classifier 20 6
run=$T/run
for f in loss learning_rate grad_norm eval_accuracy eval_f1 results; do
  [[ -f $run/plots/$f.png ]] && is_chart "$run/plots/$f.png" || fail "em-train wrote no plots/$f.png: $(ls "$run/plots" 2>&1)"
done

expect_exit 0 "em-plot redraws a run into another folder" -- "$EM_BIN/em-plot" "$run" --output_dir "$T/replot" --compact
jq -e --arg d "$T/replot" '.plots | length >= 6 and (map(startswith($d)) | all) and (.[-1] | endswith("/results.png"))' \
  "$T/out" >/dev/null && pass "em-plot prints the files it wrote, results.png last" || fail "em-plot: $(cat "$T/out")"
pix same "$run/plots/loss.png" "$T/replot/loss.png" && pass "em-plot draws what em-train drew" ||
  fail "em-plot's loss.png differs from em-train's"

# A run as a crash leaves it: per-class values, a null, a line cut short.
mkdir -p "$T/crashed"
cat >"$T/crashed/metrics.jsonl" <<'JSONL'
{"step":1,"epoch":0.5,"loss":2.0,"learning_rate":0.001,"time":"x","elapsed_s":1}
{"step":2,"epoch":1.0,"loss":1.5,"learning_rate":0.0005,"time":"x","elapsed_s":2}
{"step":2,"epoch":1.0,"eval_mean_iou":0.25,"eval_iou/road":0.5,"eval_iou/sky":null,"eval_iou/Żółw":0.1,"time":"x","elapsed_s":3}
{"step":3,"epoch":1.5,"loss":1.2,"lear
JSONL
expect_exit 0 "em-plot reads a crashed run's metrics.jsonl" -- "$EM_BIN/em-plot" "$T/crashed"
expect_stderr 'skipped 1 unreadable line' "the cut line is skipped with a warning"
for f in loss learning_rate eval_mean_iou eval_iou results; do
  [[ -f $T/crashed/plots/$f.png ]] && is_chart "$T/crashed/plots/$f.png" || fail "em-plot wrote no $f.png"
done
[[ ! -e $T/crashed/plots/eval_iou_road.png ]] && pass "per-class values share one chart (eval_iou.png)" ||
  fail "eval_iou/road got its own chart"
expect_exit 1 "em-plot on a folder without metrics.jsonl" -- "$EM_BIN/em-plot" "$T/crashed/plots"
expect_stderr 'metrics.jsonl: not found' "the message names the missing file"

expect_exit 0 "em-eval --plots (classification)" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 \
  --plots "$T/cls-plots"
cp "$T/out" "$T/cls-metrics.json"
for f in confusion_matrix confusion_matrix_normalized per_class_metrics; do is_chart "$T/cls-plots/$f.png"; done
expect_exit 0 "em-eval without --plots" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1
cmp -s "$T/out" "$T/cls-metrics.json" && pass "--plots leaves the metrics JSON unchanged" || fail "the metrics differ"

mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 2)
expect_exit 0 "em-predict without --draw" -- "$EM_BIN/em-predict" --model "$model" --threads 1 "${imgs[@]}"
cp "$T/out" "$T/plain.jsonl"
expect_exit 0 "em-predict --draw DIR for two images" -- "$EM_BIN/em-predict" --model "$model" --threads 1 \
  "${imgs[@]}" --draw "$T/drawn"
cmp -s "$T/out" "$T/plain.jsonl" && pass "--draw leaves stdout unchanged" || fail "stdout differs with --draw"
for img in "${imgs[@]}"; do
  f=$T/drawn/$(basename "${img%.*}").png
  if [[ -f $f ]]; then
    read -r w h < <(pix size "$f")
    (( w > 28 && h >= 28 )) && pass "$(basename "$f"): the image with its top-k bars beside it (${w}x$h)" ||
      fail "$(basename "$f"): ${w}x$h"
  else
    fail "no picture $f"
  fi
done
expect_exit 0 "em-predict --draw FILE.png for one request instance" -- \
  bash -c '"$1/em-b64" "$2" | "$1/em-predict" --model "$3" --threads 1 --draw "$4"' _ "$EM_BIN" "${imgs[0]}" "$model" \
  "$T/one.png"
[[ -f $T/one.png ]] && pass "one instance: the picture is the file named" || fail "no $T/one.png"
expect_exit 2 "--draw - is a usage error" -- "$EM_BIN/em-predict" --model "$model" "${imgs[0]}" --draw -
expect_stderr 'stdout carries the response' "the message says why"
expect_exit 2 "--draw NAME.jpg for one image" -- "$EM_BIN/em-predict" --model "$model" "${imgs[0]}" --draw "$T/x.jpg"
expect_exit 2 "--draw NAME.png for two images" -- "$EM_BIN/em-predict" --model "$model" "${imgs[@]}" --draw "$T/two.png"
expect_stderr 'need a folder' "the message says a folder is needed"
expect_exit 2 "--draw onto the input image" -- "$EM_BIN/em-predict" --model "$model" "$T/one.png" --draw "$T/one.png"

# plots/ is the run's own folder: --overwrite_output_dir removes it, unless it holds the user's files.
echo "my notes" >"$run/plots/notes.txt"
expect_exit 2 "--overwrite_output_dir with a user's file in plots/" -- "$EM_BIN/em-train" --algo classification \
  --data "$data" --model_config "$T/tiny.json" --output_dir "$run" --overwrite_output_dir --threads 1 \
  --num_train_epochs 1 -q
expect_stderr 'plots/notes.txt was not written by emkit' "the message names the user's file"
[[ -f $run/plots/notes.txt && -f $run/plots/loss.png ]] && pass "nothing was removed" || fail "files were removed"

# ---- detection: a tiny DETR on coco-mini ----
coco=${EM_SHARED:-}/data/coco-mini
camvid=${EM_SHARED:-}/data/camvid-mini
if [[ -f $coco/train/_annotations.coco.json && -f $camvid/train/train.json ]]; then
  cat >"$T/detr.json" <<'JSON'
{"model_type": "detr", "backbone": "resnet18", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
 "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
 "num_queries": 10, "dropout": 0.0}
JSON
  expect_exit 0 "a tiny DETR" -- "$EM_BIN/em-train" --algo detection --data "$coco" --model_config "$T/detr.json" \
    --output_dir "$T/det" --image_size 64 --threads 1 --num_workers 1 --per_device_train_batch_size 3 \
    --num_train_epochs 2 -q
  for f in loss loss_ce loss_bbox loss_giou eval_AP results; do
    [[ -f $T/det/plots/$f.png ]] || fail "detection run: no plots/$f.png"
  done
  expect_exit 0 "em-eval --plots (detection)" -- "$EM_BIN/em-eval" --model "$T/det/model" --data "$coco" --threads 1 \
    --plots "$T/det-plots"
  for f in pr_curve pr_curves_per_class per_class_ap; do is_chart "$T/det-plots/$f.png"; done

  jpg=$(find "$coco/validation" -name '*.jpg' | sort | head -n 1)
  pix topng "$jpg" "$T/photo.png"
  expect_exit 0 "em-predict --draw, detection, threshold 0 (every query)" -- "$EM_BIN/em-predict" \
    --model "$T/det/model" --threads 1 --threshold 0 "$T/photo.png" --draw "$T/boxes.png"
  n=$(jq '.predictions | length' "$T/out")
  [[ $(pix size "$T/boxes.png") == "$(pix size "$T/photo.png")" ]] && pass "the picture has the image's size" ||
    fail "sizes differ: $(pix size "$T/boxes.png") vs $(pix size "$T/photo.png")"
  (( n > 0 )) && ! pix same "$T/boxes.png" "$T/photo.png" && pass "$n boxes drawn onto the image" ||
    fail "$n detections, but the picture equals the image"
  expect_exit 0 "em-predict --draw, detection, threshold 1 (nothing above it)" -- "$EM_BIN/em-predict" \
    --model "$T/det/model" --threads 1 --threshold 1 "$T/photo.png" --draw "$T/none.png"
  [[ $(jq '.predictions | length' "$T/out") == 0 ]] && pix same "$T/none.png" "$T/photo.png" &&
    pass "no detection: the picture is the image, pixel for pixel" || fail "no detection, yet pixels changed"

  # ---- segmentation: a tiny SegFormer on camvid-mini ----
  cat >"$T/seg.json" <<'JSON'
{"model_type": "segformer", "num_encoder_blocks": 4, "depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 48, 64],
 "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2],
 "mlp_ratios": [2, 2, 2, 2], "decoder_hidden_size": 32}
JSON
  expect_exit 0 "a tiny SegFormer" -- "$EM_BIN/em-train" --algo segmentation --data "$camvid" \
    --model_config "$T/seg.json" --output_dir "$T/seg" --image_size 64 --threads 1 --num_workers 1 \
    --per_device_train_batch_size 3 --num_train_epochs 1 -q
  [[ -f $T/seg/plots/eval_mean_iou.png && -f $T/seg/plots/eval_iou.png ]] &&
    pass "segmentation run: eval_mean_iou.png and one eval_iou.png for the per-class IoUs" ||
    fail "segmentation run plots: $(ls "$T/seg/plots")"
  expect_exit 0 "em-eval --plots (segmentation)" -- "$EM_BIN/em-eval" --model "$T/seg/model" --data "$camvid" \
    --threads 1 --plots "$T/seg-plots" --plot_examples 2
  is_chart "$T/seg-plots/per_class_iou.png"
  mapfile -t examples < <(find "$T/seg-plots/examples" -name '*.png' | sort)
  first=$(jq -r '.[0].image' "$camvid/validation/validation.json")
  if [[ ${#examples[@]} -eq 2 ]]; then
    read -r w h < <(pix size "${examples[0]}")
    read -r iw ih < <(pix size "$camvid/validation/$first")
    (( w >= 3 * iw && h > ih )) && pass "an example: image | truth | prediction side by side (${w}x$h from ${iw}x$ih)" ||
      fail "example ${w}x$h for an image of ${iw}x$ih"
  else
    fail "--plot_examples 2 drew ${#examples[@]} examples"
  fi
  seg_img=$camvid/validation/$first
  expect_exit 0 "em-predict --draw, segmentation" -- "$EM_BIN/em-predict" --model "$T/seg/model" --threads 1 \
    "$seg_img" --draw "$T/overlay.png"
  [[ $(pix size "$T/overlay.png") == "$(pix size "$seg_img")" ]] && ! pix same "$T/overlay.png" "$seg_img" &&
    pass "the overlay has the image's size and colours it" || fail "overlay: $(pix size "$T/overlay.png")"
else
  echo "coco-mini or camvid-mini is absent: detection and segmentation pictures not checked"
fi
finish
