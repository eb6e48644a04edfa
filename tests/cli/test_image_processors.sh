#!/usr/bin/env bash
# A Hub processor through the real tool: em-predict with microsoft/resnet-50's preprocessor_config.json (ConvNext:
# bicubic resize of the short side to 256, centre 224 x 224 crop) answers exactly as with a plain processor on the crop
# Pillow makes; a processor field emkit cannot reproduce is refused with exit 1 and the field's name.
source "$(dirname "$0")/lib.sh"
[[ -x $EM_BIN/em-predict && -x $EM_BIN/em-train ]] || skip "em-predict or em-train is not built"
command -v jq >/dev/null || skip "jq is not installed"
photo=$EM_SHARED/data/images/chelsea.png
[[ -f $photo ]] || skip "$photo is absent (../shared is only in the team's checkouts and CI)"
/usr/bin/python3 -c 'import PIL' 2>/dev/null || skip "python3-pil is not installed"

train_tiny_classifier 20 6

# Pillow's side: resize(BICUBIC) of the 451x300 photo to 384x256, then the crop at ((384-224)//2, (256-224)//2).
/usr/bin/python3 - "$photo" "$T/crop.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB").resize((384, 256), Image.BICUBIC)
im.crop((80, 16, 304, 240)).save(sys.argv[2])
PY

resnet50=$T/resnet50
mkdir -p "$resnet50"
cp "$model/config.json" "$model/model.safetensors" "$resnet50/"
cat >"$resnet50/preprocessor_config.json" <<'JSON'
{"crop_pct": 0.875, "do_normalize": true, "do_resize": true, "feature_extractor_type": "ConvNextFeatureExtractor",
 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}
JSON
plain=$T/plain
mkdir -p "$plain"
cp "$model/config.json" "$model/model.safetensors" "$plain/"
cat >"$plain/preprocessor_config.json" <<'JSON'
{"image_processor_type": "ViTImageProcessor", "size": {"height": 224, "width": 224},
 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
JSON

expect_exit 0 "em-predict with microsoft/resnet-50's processor" -- \
  "$EM_BIN/em-predict" --model "$resnet50" --threads 1 --top_k 0 "$photo"
jq -c '.predictions' "$T/out" >"$T/convnext.json"
expect_exit 0 "em-predict with a plain 224 x 224 processor on Pillow's crop" -- \
  "$EM_BIN/em-predict" --model "$plain" --threads 1 --top_k 0 "$T/crop.png"
jq -c '.predictions' "$T/out" >"$T/crop.json"
cmp -s "$T/crop.json" "$T/convnext.json" && pass "ConvNext's resize + crop equals Pillow's bicubic resize and crop" ||
  fail "the answers differ: $(head -c 300 "$T/convnext.json") vs $(head -c 300 "$T/crop.json")"
expect_exit 0 "em-predict with em-train's own processor" -- \
  "$EM_BIN/em-predict" --model "$model" --threads 1 --top_k 0 "$photo"
jq -c '.predictions' "$T/out" >"$T/square.json"
cmp -s "$T/square.json" "$T/convnext.json" && fail "em-train's square bilinear processor answered as ConvNext's" ||
  pass "the processor in the folder decides the pixels"

# A field of another processor that changes the pixels: refused, named.
cat >"$resnet50/preprocessor_config.json" <<'JSON'
{"feature_extractor_type": "DeiTFeatureExtractor", "do_center_crop": true, "crop_size": 224, "size": 256,
 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
JSON
expect_exit 1 "em-predict refuses a processor it cannot reproduce" -- \
  "$EM_BIN/em-predict" --model "$resnet50" --threads 1 "$photo"
expect_stderr 'preprocessor_config.json: field "do_center_crop" = true of DeiTImageProcessor' \
  "the error names the file, the field and the class"
finish
