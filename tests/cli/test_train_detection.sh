#!/usr/bin/env bash
# Detection end to end on ../shared/data/coco-mini (2 real COCO images): em-validate (clean and broken COCO files,
# with JSON paths), a small DETR overfitting the training images (training-set AP well above 0), em-eval's 12 COCO
# numbers equal to em-metrics' on em-eval's own results list, em-predict's response shape, em-serve's bytes equal to
# em-predict's, bit-identical weights after SIGKILL + resume.
source "$(dirname "$0")/lib.sh"
data=$EM_SHARED/data/coco-mini
[[ -f $data/train/_annotations.coco.json ]] || skip "$data is absent (../shared is only in the team's checkouts and CI)"
command -v jq >/dev/null || skip "jq is not installed"

# 1. em-validate: the real data is valid; a broken copy lists each problem with its JSON path and exits 1.
expect_exit 0 "em-validate: coco-mini is valid" -- "$EM_BIN/em-validate" --algo detection "$data" --json
jq -e '.valid and .summary.splits.train.boxes == 40 and .summary.splits.train.crowd_boxes == 3
       and .summary.splits.train.boxes_per_class.horse == 11 and .summary.categories[1].id == 8
       and .summary.splits.train.box_sizes.medium == 28' "$T/out" >/dev/null &&
  pass "summary: boxes, crowd regions, per class, COCO sizes, categories in id order" || fail "summary: $(head -c 600 "$T/out")"
bad=$T/broken
for split in train validation; do
  mkdir -p "$bad/$split"
  cp "$data/train/000000142238.jpg" "$data/train/000000439180.jpg" "$bad/$split/"  # links out of the split are refused
  cp "$data/$split/_annotations.coco.json" "$bad/$split/"
done
jq '.annotations[3].category_id = 99 | .annotations[5].bbox = [10, 10, 0, 5] | .annotations[7].id = 1
    | .images[1].width = 700 | .images += [{"id": 7, "file_name": "gone.jpg", "width": 10, "height": 10}]' \
  "$data/train/_annotations.coco.json" >"$bad/train/_annotations.coco.json"
expect_exit 1 "em-validate: a broken COCO file exits 1" -- "$EM_BIN/em-validate" --algo detection "$bad"
for want in 'annotations\[3\]\.category_id: 99 is not the id' 'annotations\[5\]\.bbox: degenerate box' \
            'annotations\[7\]\.id: duplicate annotation id 1' 'images\[1\]: width x height 700x360 disagrees' \
            'gone\.jpg: cannot open.*images\[2\]\.file_name'; do
  grep -Eq -- "$want" "$T/out" && pass "reports /$want/" || fail "no /$want/ in: $(head -c 1500 "$T/out")"
done
expect_exit 1 "em-train refuses the broken file" -- "$EM_BIN/em-train" --algo detection --data "$bad" --output_dir "$T/nope" \
  --model_config detr-resnet-18-tiny --threads 1 -q
expect_stderr 'annotations\[3\]\.category_id' "em-train names the JSON path"

# 2. Overfit: a small DETR (resnet18 backbone, d_model 64, 2+2 layers, 48 queries: image 2 has 26 targets).
cfg=$T/detr.json
cat >"$cfg" <<'JSON'
{"model_type": "detr", "backbone": "resnet18", "d_model": 64, "encoder_layers": 2, "decoder_layers": 2,
 "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
 "num_queries": 48, "dropout": 0.0, "auxiliary_loss": true}
JSON
common=(--algo detection --data "$data" --model_config "$cfg" --threads 1 --num_workers 1 -q --image_size 64
        --augmentation none --per_device_train_batch_size 2 --learning_rate 1e-3 --weight_decay 0 --threshold 0.3
        --logging_steps 10)
steps=${EM_DETR_OVERFIT_STEPS:-300}  # measured: training-set AP 0.29 after 300 steps (~70 s of one core)
t0=$(date +%s)
expect_exit 0 "em-train overfits coco-mini ($steps steps)" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/run" \
  --num_train_epochs "$steps" --eval_strategy steps --eval_steps "$steps" --save_steps 100000
echo "training took $(( $(date +%s) - t0 )) s"
run=$T/run
jq -e '.threshold == 0.3 and .id2label["0"] == "person" and .id2label["3"] == "sports ball" and .num_queries == 48' \
  "$run/model/config.json" >/dev/null && pass "config.json: threshold and labels in category-id order" ||
  fail "config.json: $(jq -c '{threshold, id2label}' "$run/model/config.json")"
jq -e '.size.shortest_edge == 64 and .size.longest_edge == 107 and .do_pad and .image_processor_type == "DetrImageProcessor"' \
  "$run/model/preprocessor_config.json" >/dev/null && pass "preprocessor_config.json: DetrImageProcessor fields" ||
  fail "preprocessor_config.json: $(cat "$run/model/preprocessor_config.json")"
jq -se 'map(select(.loss != null)) | length == 30 and all(.loss_ce and .loss_bbox and .loss_giou)' "$run/metrics.jsonl" >/dev/null &&
  pass "metrics.jsonl logs loss_ce, loss_bbox, loss_giou" || fail "metrics.jsonl: $(head -n 2 "$run/metrics.jsonl")"
jq -se 'map(select(.eval_AP != null)) | length == 1 and all(.eval_AP50 != null and .eval_AP75 != null)' "$run/metrics.jsonl" >/dev/null &&
  pass "metrics.jsonl logs eval_AP, eval_AP50, eval_AP75" || fail "no eval line: $(tail -n 2 "$run/metrics.jsonl")"
first=$(jq -s 'map(select(.loss != null)) | first | .loss' "$run/metrics.jsonl")
last=$(jq -s 'map(select(.loss != null)) | last | .loss' "$run/metrics.jsonl")
jq -en --argjson a "$first" --argjson b "$last" '$b < $a / 3' >/dev/null && pass "the loss falls: $first -> $last" ||
  fail "the loss did not fall: $first -> $last"
if python3 "$EM_SOURCE/scripts/golden/read_tfevents.py" "$run/runs" >"$T/events.jsonl" 2>/dev/null; then
  for tag in train/loss_ce train/loss_bbox train/loss_giou eval/AP eval/AP50 eval/AP75; do
    grep -q "\"$tag\"" "$T/events.jsonl" && pass "TensorBoard has $tag" || fail "TensorBoard lacks $tag"
  done
fi

# 3. em-eval on the training images: all 12 numbers, AP well above 0; em-metrics agrees on em-eval's results list.
expect_exit 0 "em-eval --split train" -- "$EM_BIN/em-eval" --model "$run/model" --data "$data" --split train \
  --predictions "$T/results.json" --threads 1 -q
cp "$T/out" "$T/eval.json"
jq -e '[.AP, .AP50, .AP75, .APs, .APm, .APl, .AR1, .AR10, .AR100, .ARs, .ARm, .ARl] | all(type == "number")' \
  "$T/eval.json" >/dev/null && pass "em-eval prints the 12 COCO numbers" || fail "em-eval: $(head -c 600 "$T/eval.json")"
jq -e '.per_class.person.AP | type == "number"' "$T/eval.json" >/dev/null && pass "per-class AP" || fail "no per_class"
ap=$(jq .AP "$T/eval.json"); ap50=$(jq .AP50 "$T/eval.json")
echo "training-set AP $ap, AP50 $ap50 after $steps steps"
jq -e '.AP > 0.15' "$T/eval.json" >/dev/null && pass "the small DETR overfits: training-set AP $ap > 0.15" ||
  fail "training-set AP $ap is not well above 0 (loss $first -> $last)"
jq -e 'length == 96 and all(.[]; (.image_id == 142238 or .image_id == 439180)
       and ([.category_id] | inside([1, 8, 19, 37])) and (.bbox | length == 4) and (.score > 0))' \
  "$T/results.json" >/dev/null && pass "--predictions: COCO results with the dataset's image and category ids" ||
  fail "results: $(head -c 400 "$T/results.json")"
expect_exit 0 "em-metrics on em-eval's results" -- "$EM_BIN/em-metrics" --algo detection \
  --truth "$data/train/_annotations.coco.json" --pred "$T/results.json"
diff <(jq -S 'del(.per_class)' "$T/eval.json") <(jq -S 'del(.per_class)' "$T/out") >/dev/null &&
  diff <(jq -S .per_class "$T/eval.json") <(jq -S .per_class "$T/out") >/dev/null &&
  pass "em-metrics gives em-eval's numbers exactly" || fail "em-metrics differs: $(jq -c . "$T/out" | head -c 400)"

# 4. em-predict: [{"score", "label", "box": {xmin, ymin, xmax, ymax}}] in original pixels, score > threshold.
img=$data/train/000000439180.jpg  # 640 x 360
"$EM_BIN/em-b64" "$img" >"$T/req.json"
expect_exit 0 "em-predict" -- "$EM_BIN/em-predict" --model "$run/model" --input "$T/req.json" --threads 1
cp "$T/out" "$T/pred.json"
jq -e 'type == "array" and length > 0 and all(.[]; (keys == ["box", "label", "score"]) and .score > 0.3
       and (.label | type == "string") and (.box | keys == ["xmax", "xmin", "ymax", "ymin"])
       and .box.xmin >= 0 and .box.xmin <= .box.xmax and .box.xmax <= 640
       and .box.ymin >= 0 and .box.ymin <= .box.ymax and .box.ymax <= 360)' "$T/pred.json" >/dev/null &&
  pass "em-predict: $(jq length "$T/pred.json") detections above the saved threshold, boxes inside the 640x360 image" ||
  fail "em-predict response: $(head -c 500 "$T/pred.json")"
jq -e '[.[].score] == ([.[].score] | sort | reverse)' "$T/pred.json" >/dev/null && pass "best first" || fail "not sorted"
expect_exit 0 "em-predict --threshold 0 keeps every query" -- "$EM_BIN/em-predict" --model "$run/model" "$img" --threshold 0 --threads 1
jq -e '.predictions | length == 48' "$T/out" >/dev/null && pass "--threshold 0: all 48 queries" || fail "--threshold 0: $(head -c 200 "$T/out")"
expect_exit 0 "em-predict --threshold 1" -- "$EM_BIN/em-predict" --model "$run/model" "$img" --threshold 1 --threads 1
[[ $(cat "$T/out") == "{\"image\":\"$img\",\"predictions\":[]}" ]] && pass "--threshold 1: nothing" || fail "--threshold 1: $(head -c 200 "$T/out")"
expect_exit 0 "em-predict on two images of different sizes" -- "$EM_BIN/em-predict" --model "$run/model" \
  "$img" "$data/train/000000142238.jpg" --threads 1
jq -se --arg b "$data/train/000000142238.jpg" 'length == 2 and .[1].image == $b and (.[1].predictions | all(.[]; .box.ymax <= 427))' \
  "$T/out" >/dev/null && pass "two images: two JSONL lines, each with its path" || fail "two images: $(head -c 300 "$T/out")"

# 5. em-serve answers em-predict's bytes for the same request.
if command -v curl >/dev/null; then
  log=$T/serve.err
  "$EM_BIN/em-serve" --model "$run/model" --port 0 --threads 1 2>"$log" &
  spid=$! port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log")
    [[ -n $port ]] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -n $port ]]; then
    curl -s --data-binary @"$T/req.json" "http://127.0.0.1:$port/inference" >"$T/served.json"
    cmp -s "$T/served.json" "$T/pred.json" && pass "em-serve: em-predict's exact bytes" ||
      fail "em-serve: $(head -c 300 "$T/served.json") vs $(head -c 300 "$T/pred.json")"
    curl -s "http://127.0.0.1:$port/health" | jq -e '.algo == "detection"' >/dev/null && pass "/health: algo detection" ||
      fail "/health: $(curl -s "http://127.0.0.1:$port/health")"
    # Per-request thresholds, in one request each and in one shared forward pass: 0 keeps every query, 1 none,
    # as em-predict's --threshold does.
    jq -c '. + {parameters: {threshold: 0}}' "$T/req.json" >"$T/t0.json"
    jq -c '. + {parameters: {threshold: 1}}' "$T/req.json" >"$T/t1.json"
    curl -s --data-binary @"$T/t0.json" "http://127.0.0.1:$port/inference" >"$T/t0.out" &
    cpid=$!
    curl -s --data-binary @"$T/t1.json" "http://127.0.0.1:$port/inference" >"$T/t1.out"
    wait $cpid
    jq -e 'length == 48' "$T/t0.out" >/dev/null && [[ $(cat "$T/t1.out") == "[]" ]] &&
      pass "em-serve: parameters.threshold 0 gives all 48 queries, 1 none" ||
      fail "parameters.threshold: $(head -c 200 "$T/t0.out") / $(head -c 200 "$T/t1.out")"
    # Alone (a forward pass of one image, as em-predict's): the same bytes.
    curl -s --data-binary @"$T/t0.json" "http://127.0.0.1:$port/inference" >"$T/t0.alone"
    "$EM_BIN/em-predict" --model "$run/model" --threads 1 <"$T/t0.json" | cmp -s - "$T/t0.alone" &&
      pass "em-predict: the same bytes for parameters.threshold 0" || fail "em-predict with parameters.threshold 0 differs"
    jq -c '. + {parameters: {top_k: 3}}' "$T/req.json" >"$T/k.json"
    [[ $(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/k.json" "http://127.0.0.1:$port/inference") == 400 ]] &&
      pass "em-serve: top_k on a detection model is 400" || fail "top_k on a detection model was not refused"
    kill -TERM "$spid"; wait "$spid" || true
  else
    fail "em-serve did not start: $(tail -3 "$log")"
  fi
fi

# 6. SIGKILL after a checkpoint, then resume: bit-identical weights (DETR recipe augmentation, dropout on).
rcfg=$T/resume.json
jq '.dropout = 0.1 | .num_queries = 10' "$cfg" >"$rcfg"
rcommon=(--algo detection --data "$data" --model_config "$rcfg" --threads 1 --num_workers 1 -q --image_size 64
         --per_device_train_batch_size 1 --learning_rate 1e-4 --save_steps 3 --eval_strategy no --num_train_epochs 10)
expect_exit 0 "an uninterrupted run" -- "$EM_BIN/em-train" "${rcommon[@]}" --output_dir "$T/full"
"$EM_BIN/em-train" "${rcommon[@]}" --output_dir "$T/killed" >/dev/null 2>&1 &
kpid=$!
for _ in $(seq 1 1200); do [[ -f $T/killed/checkpoint-3/trainer_state.json ]] && break; sleep 0.05; done
kill -9 $kpid 2>/dev/null || true; wait $kpid 2>/dev/null || true
expect_exit 0 "resume after SIGKILL" -- "$EM_BIN/em-train" "${rcommon[@]}" --output_dir "$T/killed" --resume_from_checkpoint
cmp -s "$T/full/model/model.safetensors" "$T/killed/model/model.safetensors" && pass "resumed weights are bit-identical" ||
  fail "resumed weights differ"
finish
