#!/usr/bin/env bash
# Makes the pictures in docs/pictures/ from the shared real data (../shared/data: coco-mini, camvid-mini; Debian's
# Fashion-MNIST) with the tools themselves: em-validate --preview, em-predict --draw, em-eval --plots and em-train's
# plots/. Small models trained for a minute or two on one core (a DETR overfitted on coco-mini's train split, so
# its boxes sit on the objects of those images; a tiny SegFormer on camvid-mini; a tiny ResNet on Fashion-MNIST).
# The PNGs are then shrunk to at most 900 px wide and reduced to 256 colours with Pillow (Debian's python3-pil) so
# that the repository stays small. Usage: scripts/docs_pictures.sh [BIN_DIR] (default build/bin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build/bin}" && pwd)
shared=${EM_SHARED:-$root/../shared}
out=$root/docs/pictures
work=$(mktemp -d "${TMPDIR:-/tmp}/em-docs-pictures.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
coco=$shared/data/coco-mini
camvid=$shared/data/camvid-mini
for f in "$coco/train/_annotations.coco.json" "$camvid/train/train.json"; do
  [[ -f $f ]] || { echo "docs_pictures: $f is missing (../shared/data)" >&2; exit 1; }
done
step() { printf '== %s\n' "$*" >&2; }

step "em-validate --preview (coco-mini, camvid-mini)"
# From the data folder, so that the sheets' titles name the dataset rather than this machine's path.
(cd "$shared/data" && "$bin/em-validate" --algo detection coco-mini --preview "$work/coco-preview" --preview_images 4 \
  -q >/dev/null && "$bin/em-validate" --algo segmentation camvid-mini --preview "$work/camvid-preview" \
  --preview_images 3 -q >/dev/null)
cp "$work/coco-preview/train.png" "$out/validate-detection.png"
cp "$work/camvid-preview/train.png" "$out/validate-segmentation.png"
cp "$work/coco-preview/instances_per_class.png" "$out/validate-instances.png"

step "a DETR overfitted on coco-mini's train split (300 steps)"
cat >"$work/detr.json" <<'JSON'
{"model_type": "detr", "backbone": "resnet18", "d_model": 64, "encoder_layers": 2, "decoder_layers": 2,
 "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
 "num_queries": 48, "dropout": 0.0, "auxiliary_loss": true}
JSON
"$bin/em-train" --algo detection --data "$coco" --model_config "$work/detr.json" --output_dir "$work/det" -q \
  --threads 1 --num_workers 1 --image_size 64 --augmentation none --per_device_train_batch_size 2 \
  --learning_rate 1e-3 --weight_decay 0 --threshold 0.3 --logging_steps 10 --num_train_epochs 300 \
  --eval_strategy no --save_steps 100000 >/dev/null
first=$(find "$coco/train" -name '*.jpg' | sort | sed -n 1p)
"$bin/em-predict" --model "$work/det/model" "$first" --threshold 0.6 --draw "$out/predict-detection.png" -q >/dev/null
"$bin/em-eval" --model "$work/det/model" --data "$coco" --split train --plots "$work/det-plots" -q >/dev/null
cp "$work/det-plots/pr_curve.png" "$out/eval-pr-curve.png"

step "a tiny SegFormer on camvid-mini (120 steps at 128 px)"
cat >"$work/seg.json" <<'JSON'
{"model_type": "segformer", "num_encoder_blocks": 4, "depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 48, 64],
 "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2],
 "mlp_ratios": [2, 2, 2, 2], "decoder_hidden_size": 32}
JSON
"$bin/em-train" --algo segmentation --data "$camvid" --model_config "$work/seg.json" --output_dir "$work/seg" -q \
  --threads 1 --num_workers 1 --image_size 128 --per_device_train_batch_size 3 --learning_rate 3e-3 \
  --num_train_epochs 120 --logging_steps 5 --eval_strategy steps --eval_steps 20 --save_steps 100000 >/dev/null
cp "$work/seg/plots/results.png" "$out/plot-results.png"
image=$camvid/train/$(jq -r '.[0].image' "$camvid/train/train.json")
"$bin/em-predict" --model "$work/seg/model" "$image" --draw "$out/predict-segmentation.png" -q >/dev/null
"$bin/em-eval" --model "$work/seg/model" --data "$camvid" --split train --plots "$work/seg-plots" --plot_examples 1 \
  -q >/dev/null
cp "$(find "$work/seg-plots/examples" -name '*.png' | sort | sed -n 1p)" "$out/eval-segmentation-example.png"

step "a tiny ResNet on Fashion-MNIST (2,000 images, 2 epochs)"
python3 "$root/scripts/fashion_mnist_to_folder.py" --train 2000 --validation 500 "$work/fashion" >/dev/null
cat >"$work/resnet.json" <<'JSON'
{"model_type": "resnet", "architectures": ["ResNetForImageClassification"], "num_channels": 3,
 "embedding_size": 16, "hidden_sizes": [32, 64, 96, 128], "depths": [1, 1, 1, 1], "layer_type": "bottleneck",
 "hidden_act": "relu", "downsample_in_first_stage": false, "downsample_in_bottleneck": false}
JSON
"$bin/em-train" --algo classification --data "$work/fashion" --model_config "$work/resnet.json" -q \
  --output_dir "$work/cls" --threads 1 --num_workers 1 --learning_rate 2e-3 --num_train_epochs 2 >/dev/null
"$bin/em-eval" --model "$work/cls/model" --data "$work/fashion" --plots "$work/cls-plots" -q >/dev/null
cp "$work/cls-plots/confusion_matrix_normalized.png" "$out/eval-confusion-matrix.png"
images=("$work"/fashion/validation/*/*.png)
"$bin/em-predict" --model "$work/cls/model" "${images[0]}" --draw "$out/predict-classification.png" -q >/dev/null

step "shrinking the PNGs in $out"
/usr/bin/python3 - "$out" <<'PY'
import pathlib, sys
from PIL import Image
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.png")):
    im = Image.open(p).convert("RGB")
    if im.width > 900:
        im = im.resize((900, round(im.height * 900 / im.width)), Image.LANCZOS)
    im.quantize(256, method=Image.Quantize.MEDIANCUT).save(p, optimize=True)
    print(f"{p.name}: {im.width}x{im.height}, {p.stat().st_size // 1024} KiB")
PY
