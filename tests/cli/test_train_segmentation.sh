#!/usr/bin/env bash
# Segmentation end to end on real CamVid street scenes (../shared/data/camvid-mini) with a tiny SegFormer at 64x64:
# em-validate's report, training lowers the loss and writes the run directory, em-eval gives every metric and label
# PNGs that em-metrics scores to the same JSON, em-predict returns decodable 0/255 masks of the original size (and
# --output_dir label maps), em-serve answers em-predict's bytes, resume after SIGKILL is bit-identical, --init from a
# run's model, and broken layouts exit 1 naming the file.
source "$(dirname "$0")/lib.sh"
camvid=${EM_SHARED:-}/data/camvid-mini
[[ -f $camvid/train/train.json ]] || skip "$camvid is absent (../shared is only in the team's checkouts and CI)"
command -v jq >/dev/null || skip "jq is not installed (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"

cat >"$T/tiny.json" <<'JSON'
{"model_type": "segformer", "num_encoder_blocks": 4, "depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 48, 64],
 "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2],
 "mlp_ratios": [2, 2, 2, 2], "decoder_hidden_size": 32}
JSON
base=(--algo segmentation --data "$camvid" --model_config "$T/tiny.json" --image_size 64 --threads 1 --num_workers 1 -q)
common=("${base[@]}" --per_device_train_batch_size 4 --learning_rate 2e-3 --logging_steps 1 --save_steps 5)

# pngs.py: decodes 8-bit grayscale PNGs with the standard library only (zlib + the five scanline filters), so the
# check shares no code with our encoder. Commands: "masks RESPONSE.json" prints, per mask, label width height and
# the set of pixel values; "labelmap FILE.png RESPONSE.json" checks the masks equal (label map == class id).
cat >"$T/pngs.py" <<'PY'
import base64, json, struct, sys, zlib

def decode(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour == 0, f"expected 8-bit grayscale, got depth {depth} colour type {colour}"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], bytearray(width)
    for y in range(height):
        f, line = raw[y * (width + 1)], bytearray(raw[y * (width + 1) + 1:(y + 1) * (width + 1)])
        for x in range(width):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
            line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, b"".join(rows)

if sys.argv[1] == "masks":
    for item in json.load(open(sys.argv[2])):
        w, h, px = decode(base64.b64decode(item["mask"]))
        print(item["label"], w, h, sorted(set(px)), "null" if item["score"] is None else item["score"])
else:
    labels = json.load(open(sys.argv[4]))
    w, h, ids = decode(open(sys.argv[2], "rb").read())
    items = json.load(open(sys.argv[3]))
    present = sorted(set(ids))
    assert [i["label"] for i in items] == [labels[str(v)] for v in present], "labels differ from the label map's ids"
    for item, v in zip(items, present):
        _, _, px = decode(base64.b64decode(item["mask"]))
        assert px == bytes(255 if i == v else 0 for i in ids), f"mask of {item['label']} differs from label map == {v}"
    print(w, h, len(present))
PY

# 1. The real dataset validates, with pixel frequencies per class and split.
expect_exit 0 "em-validate: camvid-mini is valid" -- "$EM_BIN/em-validate" --algo segmentation "$camvid" --json
jq -e '.valid and .summary.num_labels == 11 and .summary.splits.train.images == 40 and
       (.summary.splits.validation.pixel_frequency.road | . > 0.2 and . < 0.5) and
       .summary.splits.test.pixel_counts["255 (ignore)"] > 0' "$T/out" >/dev/null &&
  pass "summary: 11 classes, 40 train images, pixel frequency per class and split" || fail "summary: $(head -c 600 "$T/out")"

# 2. A whole run: 2 epochs x 10 steps, evaluated after each epoch.
expect_exit 0 "em-train --algo segmentation runs to the end" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/a" --num_train_epochs 2
jq -e '.global_step == 20 and (.eval.mean_iou | type == "number")' "$T/out" >/dev/null && pass "stdout: train results with eval" || fail "stdout: $(head -c 400 "$T/out")"
for f in model/config.json model/model.safetensors model/preprocessor_config.json checkpoint-5/trainer_state.json \
         checkpoint-20/model.safetensors metrics.jsonl eval_results.json all_results.json; do
  [[ -s $T/a/$f ]] && pass "run dir has $f" || fail "run dir lacks $f"
done
jq -e '.model_type == "segformer" and .id2label["3"] == "road" and .label2id.sky == 0' "$T/a/model/config.json" >/dev/null &&
  pass "config.json is SegFormer with the dataset's labels" || fail "config.json: $(head -c 300 "$T/a/model/config.json")"
jq -e '.image_processor_type == "SegformerImageProcessor" and .size.height == 64' "$T/a/model/preprocessor_config.json" >/dev/null &&
  pass "preprocessor_config.json is SegformerImageProcessor at 64x64" || fail "preprocessor: $(cat "$T/a/model/preprocessor_config.json")"
first=$(jq -s '[.[] | select(.loss != null)] | .[0:3] | map(.loss) | add / 3' "$T/a/metrics.jsonl")
last=$(jq -s '[.[] | select(.loss != null)] | .[-3:] | map(.loss) | add / 3' "$T/a/metrics.jsonl")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.9) }' && pass "the loss falls ($first -> $last)" || fail "loss did not fall: $first -> $last"
jq -e 'select(.eval_mean_iou != null) | .eval_mean_accuracy != null and .eval_overall_accuracy != null and
       ."eval_iou/road" != null' "$T/a/metrics.jsonl" >/dev/null && pass "metrics.jsonl: eval mean_iou, accuracies, per-class IoU" ||
  fail "eval lines: $(grep eval "$T/a/metrics.jsonl" | head -c 400)"
if [[ -x /usr/bin/python3 ]]; then
  /usr/bin/python3 "$EM_SOURCE/scripts/golden/read_tfevents.py" "$T/a/runs" >"$T/events.jsonl" 2>"$T/err" &&
    jq -rs '[.[] | .summary[]?.tag] | unique | join(" ")' "$T/events.jsonl" >"$T/tags" &&
    grep -q "eval/mean_iou" "$T/tags" && grep -q "eval/mean_accuracy" "$T/tags" && grep -q "eval/overall_accuracy" "$T/tags" &&
    grep -q "eval/iou/road" "$T/tags" && grep -q "train/loss" "$T/tags" &&
    pass "TensorBoard: eval/mean_iou, eval/mean_accuracy, eval/overall_accuracy, eval/iou/<class>" ||
    fail "TensorBoard tags: $(cat "$T/tags" 2>/dev/null) $(head -c 300 "$T/err")"
fi

# 3. em-eval: every metric; its label PNGs give em-metrics the same numbers.
expect_exit 0 "em-eval on the segmentation model" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$camvid" --predictions "$T/pred" --threads 1 -q
cp "$T/out" "$T/eval.json"
jq -e '(.mean_iou|type=="number") and (.mean_accuracy|type=="number") and (.overall_accuracy|type=="number") and
       (.per_category_iou|length) == 11 and (.per_category_accuracy|length) == 11 and
       (.per_category_iou.road|type=="number")' "$T/eval.json" >/dev/null &&
  pass "em-eval JSON: mean_iou, mean_accuracy, overall_accuracy, per-category IoU and accuracy" || fail "em-eval: $(head -c 500 "$T/eval.json")"
[[ $(find "$T/pred" -name '*.png' | wc -l) -eq 12 ]] && [[ -f $T/pred/annotations/$(jq -r '.[0].seg_map | sub("annotations/"; "")' "$camvid/validation/validation.json") ]] &&
  pass "--predictions: 12 label PNGs at the seg_map paths" || fail "predictions: $(find "$T/pred" | head)"
expect_exit 0 "em-eval without --batch_size" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$camvid" --threads 1
expect_stderr 'batches of 4 images' "em-eval's default batch is segmentation's per_device_eval_batch_size (4)"
expect_exit 0 "em-metrics scores em-eval's label PNGs" -- "$EM_BIN/em-metrics" --algo segmentation --truth "$camvid/validation" --pred "$T/pred" -q
cmp -s "$T/out" "$T/eval.json" && pass "em-metrics gives em-eval's exact JSON" || fail "em-metrics differs: $(diff "$T/out" "$T/eval.json" | head -5)"

# 4. em-predict: masks at the original size, 0/255, classes ascending; --output_dir writes the label map.
img=$camvid/test/images/$(jq -r '.[0].image | sub("images/"; "")' "$camvid/test/test.json")
"$EM_BIN/em-b64" "$img" >"$T/request.json"
expect_exit 0 "em-predict on a request" -- "$EM_BIN/em-predict" --model "$T/a/model" --input "$T/request.json" --threads 1 --output_dir "$T/maps" -q
cp "$T/out" "$T/predict.json"
python3 "$T/pngs.py" masks "$T/predict.json" >"$T/masks.txt" 2>"$T/err"
n=$(wc -l <"$T/masks.txt")
[[ $n -ge 1 ]] && ! grep -qv ' 480 360 \[0, 255\] null$' "$T/masks.txt" &&
  pass "$n masks decode as 480x360 PNGs of 0/255 with score null" || fail "masks: $(head -3 "$T/masks.txt") $(head -c 300 "$T/err")"
jq -e 'map(.label) as $l | ($l | length) == ($l | unique | length)' "$T/predict.json" >/dev/null && pass "one mask per class" || fail "repeated labels"
if python3 "$T/pngs.py" labelmap "$T/maps/0.png" "$T/predict.json" "$camvid/resources/id2label.json" >"$T/lm.txt" 2>"$T/err"; then
  pass "--output_dir: 0.png is the 480x360 label map the masks come from, classes in ascending id ($(cat "$T/lm.txt"))"
else
  fail "label map vs masks: $(cat "$T/err")"
fi
expect_exit 0 "em-predict on an image path" -- "$EM_BIN/em-predict" --model "$T/a/model" "$img" --output_dir "$T/maps2" --threads 1 -q
jq -e --arg img "$img" --slurpfile r "$T/predict.json" '.image == $img and .predictions == $r[0]' "$T/out" >/dev/null &&
  [[ -f $T/maps2/$(basename "${img%.*}").png ]] &&
  pass "image path: {image, predictions} with the request's response, label map named after the image" ||
  fail "path prediction: $(head -c 200 "$T/out") $(ls "$T/maps2")"

# 5. em-serve answers em-predict's bytes for the same request.
if command -v curl >/dev/null; then
  "$EM_BIN/em-serve" --model "$T/a/model" --port 0 --threads 1 2>"$T/serve.err" &
  spid=$! port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$T/serve.err")
    [[ -n $port ]] && break
    kill -0 $spid 2>/dev/null || break
    sleep 0.05
  done
  if [[ -n $port ]]; then
    status=$(curl -s -o "$T/served.json" -w '%{http_code}' --data-binary @"$T/request.json" "http://127.0.0.1:$port/inference")
    [[ $status == 200 ]] && cmp -s "$T/served.json" "$T/predict.json" && pass "em-serve: 200 and em-predict's exact bytes" ||
      fail "em-serve: status $status, $(head -c 200 "$T/served.json")"
  else
    fail "em-serve did not start: $(tail -3 "$T/serve.err")"
  fi
  kill -TERM $spid 2>/dev/null || true; wait $spid 2>/dev/null || true
fi

# 6. SIGKILL after a checkpoint, then resume: bit-identical weights and the same losses.
"$EM_BIN/em-train" "${common[@]}" --output_dir "$T/k" --num_train_epochs 2 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [[ -f $T/k/checkpoint-5/trainer_state.json ]] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
[[ ! -d $T/k/checkpoint-20 ]] && pass "killed mid-run ($(cd "$T/k" && echo checkpoint-*))" || fail "the run ended before the kill"
expect_exit 0 "resume after SIGKILL" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/k" --num_train_epochs 2 --resume_from_checkpoint
cmp -s "$T/a/model/model.safetensors" "$T/k/model/model.safetensors" && pass "resumed weights are bit-identical" || fail "resumed weights differ"
diff <(jq -c 'select(.loss != null) | [.step, .loss]' "$T/a/metrics.jsonl") <(jq -c 'select(.loss != null) | [.step, .loss]' "$T/k/metrics.jsonl") >/dev/null &&
  pass "resumed run logs the same losses" || fail "losses differ after resume"

# 7. --init from the run's model (architecture from its config.json), and usage errors.
expect_exit 0 "--init from a model folder without --model_config" -- "$EM_BIN/em-train" --algo segmentation --data "$camvid" \
  --image_size 64 --threads 1 --num_workers 1 --init "$T/a/model" --output_dir "$T/i" --num_train_epochs 0.1 --eval_strategy no
expect_stderr "architecture from --init" "the architecture comes from --init's config.json"
expect_stderr "loaded [0-9]+ of [0-9]+ model tensors" "--init reports what it loaded"
# An ADE20k-style processor (do_reduce_labels) in the --init folder: the run's own processor keeps the dataset's ids.
cp -r "$T/a/model" "$T/reduce"
jq '.do_reduce_labels = true' "$T/a/model/preprocessor_config.json" >"$T/reduce/preprocessor_config.json"
expect_exit 0 "--init from a folder whose processor reduces labels" -- "$EM_BIN/em-train" --algo segmentation \
  --data "$camvid" --image_size 64 --threads 1 --num_workers 1 --init "$T/reduce" --output_dir "$T/r" \
  --max_steps 1 --eval_strategy no
expect_stderr "its processor says do_reduce_labels; .* says do_reduce_labels false" "the log says the flag is not taken"
[[ $(jq '.do_reduce_labels' "$T/r/model/preprocessor_config.json") == false ]] &&
  pass "the run's processor says do_reduce_labels false" || fail "the run took --init's do_reduce_labels"
expect_exit 2 "an unknown built-in model is a usage error" -- "$EM_BIN/em-train" --algo segmentation --data "$camvid" \
  --model_config mit-b9 --output_dir "$T/x" -q
expect_stderr "mit-b0, mit-b1" "the message lists the built-in models"
expect_exit 2 "input_size does not apply to segmentation" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --input_size 64

# 8. Broken layouts: em-validate lists the problem, em-train refuses, both naming the file.
mk() {  # mk DIR: a 4 + 2 image copy of camvid-mini
  mkdir -p "$1/resources" "$1"/{train,validation}/{images,annotations}
  cp "$camvid/resources/id2label.json" "$1/resources/"
  for split in train validation; do
    n=$([[ $split == train ]] && echo 4 || echo 2)
    jq ".[0:$n]" "$camvid/$split/$split.json" >"$1/$split/$split.json"
    jq -r '.[] | .image, .seg_map' "$1/$split/$split.json" | while read -r f; do cp "$camvid/$split/$f" "$1/$split/$f"; done
  done
}
B=$T/broken
mk "$B"
on_broken=("${base[@]}")
on_broken[3]=$B  # --data
expect_exit 0 "the small copy is valid" -- "$EM_BIN/em-validate" --algo segmentation "$B"
expect_exit 2 "em-eval --predictions into the evaluated split is refused" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$B" --predictions "$B/validation" -q
cmp -s "$B/validation/annotations/$(jq -r '.[0].seg_map | sub("annotations/"; "")' "$B/validation/validation.json")" \
  "$camvid/validation/$(jq -r '.[0].seg_map' "$B/validation/validation.json")" && pass "the truth maps are untouched" || fail "a truth map changed"
printf '[{"image": "images/x.png", "seg_map": "annotations/x.png"},\n {"image": "images/y.png" "seg_map": "z"}]\n' >"$B/train/train.json"
expect_exit 1 "em-validate: invalid train.json" -- "$EM_BIN/em-validate" --algo segmentation "$B"
grep -q "train/train.json: invalid JSON: parse error at line 2.*(in entry 1)" "$T/out" && pass "names the file, line and entry" || fail "report: $(head -c 500 "$T/out")"
expect_exit 1 "em-train: invalid train.json" -- "$EM_BIN/em-train" "${on_broken[@]}" --output_dir "$T/x"
expect_stderr "train/train.json: invalid JSON" "em-train names the file"
rm -rf "$B"; mk "$B"
seg=$(jq -r '.[1].seg_map' "$B/validation/validation.json")
python3 - "$B/validation/$seg" <<'PY'
import struct, sys, zlib
# A 480x360 grayscale PNG whose ids are 0..10 plus the unknown 11 and 42 (what an unconverted 'void' looks like).
w, h = 480, 360
rows = b"".join(b"\x00" + bytes((11 if y < 10 else 42 if y < 20 else x % 11) for x in range(w)) for y in range(h))
chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                               chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
expect_exit 1 "em-validate: unknown pixel values" -- "$EM_BIN/em-validate" --algo segmentation "$B" --json
jq -e --arg f "$seg" '.problems | any(.path | endswith($f)) and any(.reason | test("neither a label id \\(0..10\\) nor 255 \\(ignore\\): 11, 42 \\(9600 pixels\\)"))' "$T/out" >/dev/null &&
  pass "the values 11 and 42 are listed with the file" || fail "report: $(jq -c .problems "$T/out" | head -c 500)"
rm -rf "$B"; mk "$B"
rm "$B/resources/id2label.json"
expect_exit 1 "em-train without id2label.json" -- "$EM_BIN/em-train" "${on_broken[@]}" --output_dir "$T/x"
expect_stderr "resources/id2label.json: not found" "the message names the missing file"
finish
