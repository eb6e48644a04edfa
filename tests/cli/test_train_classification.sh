#!/usr/bin/env bash
# em-train / em-eval / em-predict on a small real classification dataset: the run directory, exact resume after
# SIGKILL, stop on SIGTERM, refusal to clobber a run, hyperparameter errors.
source "$(dirname "$0")/lib.sh"
data=$T/fashion
make_fashion_dataset "$data" 48 24
cfg=$T/tiny.json
write_tiny_resnet_config "$cfg"
base=(--algo classification --data "$data" --model_config "$cfg" --threads 1 --num_workers 1 -q)
common=("${base[@]}" --per_device_train_batch_size 8 --learning_rate 1e-3 --logging_steps 1 --save_steps 3)

# 1. A whole run: 4 epochs x 6 steps.
expect_exit 0 "em-train runs to the end" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/a" --num_train_epochs 4
jq -e '.global_step == 24 and (.train_loss | type == "number")' "$T/out" >/dev/null && pass "stdout: train results JSON" || fail "stdout: $(cat "$T/out")"
for f in model/config.json model/model.safetensors model/preprocessor_config.json checkpoint-3/trainer_state.json \
         checkpoint-3/optimizer.safetensors checkpoint-24/model.safetensors metrics.jsonl train_results.json \
         eval_results.json all_results.json hyperparameters.json; do
  [[ -s $T/a/$f ]] && pass "run dir has $f" || fail "run dir lacks $f"
done
[[ $(stat -c %i "$T/a/model/model.safetensors") == $(stat -c %i "$T/a/checkpoint-24/model.safetensors") ]] &&
  pass "the final checkpoint shares model/'s weights file (hard link, written once)" || fail "checkpoint-24 has its own copy of the weights"
ls "$T"/a/runs/events.out.tfevents.* >/dev/null 2>&1 && pass "TensorBoard events written" || fail "no event file"
n=$(jq -c 'select(.loss != null)' "$T/a/metrics.jsonl" | wc -l)
[[ $n -eq 24 ]] && pass "metrics.jsonl: a loss on each of 24 steps" || fail "metrics.jsonl has $n loss lines"
jq -e 'select(.eval_accuracy != null) | .step' "$T/a/metrics.jsonl" >/dev/null && pass "metrics.jsonl: eval lines" || fail "no eval line"
jq -se 'all(.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and all(.elapsed_s >= 0)
        and ([.[].elapsed_s] == ([.[].elapsed_s] | sort))' "$T/a/metrics.jsonl" >/dev/null &&
  pass "metrics.jsonl: every line has an ISO 8601 time and a growing elapsed_s" || fail "metrics.jsonl times: $(head -n 2 "$T/a/metrics.jsonl")"
jq -e '.id2label["0"] == "Ankle_boot" and .label2id.Trouser != null' "$T/a/model/config.json" >/dev/null &&
  pass "config.json carries id2label/label2id" || fail "config.json labels: $(jq -c .id2label "$T/a/model/config.json")"

# 2. em-eval and em-predict on the result.
expect_exit 0 "em-eval prints metrics" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$data" --predictions "$T/preds.jsonl" -q
cp "$T/out" "$T/eval_indented.json"
expect_exit 0 "em-eval --compact" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$data" --compact -q
[[ $(wc -l <"$T/out") -eq 1 ]] && jq -e --slurpfile full "$T/eval_indented.json" '. == $full[0]' "$T/out" >/dev/null &&
  pass "  ... prints the same metrics on one line" || fail "em-eval --compact: $(head -c 300 "$T/out")"
cp "$T/eval_indented.json" "$T/out"
cp "$T/out" "$T/eval.json"
jq -e '(.accuracy|type=="number") and (.precision|type=="number") and (.recall|type=="number") and (.f1|type=="number") and .confusion_matrix != null and .per_class != null' "$T/out" >/dev/null &&
  pass "em-eval JSON has accuracy, precision, recall, f1, per-class, confusion matrix" || fail "em-eval output: $(head -c 400 "$T/out")"
[[ $(wc -l <"$T/preds.jsonl") -eq 24 ]] && pass "--predictions: one line per validation image" || fail "predictions: $(wc -l <"$T/preds.jsonl")"
expect_exit 0 "em-metrics scores em-eval's predictions" -- "$EM_BIN/em-metrics" --algo classification --truth "$data/validation" --pred "$T/preds.jsonl"
[[ $(jq .accuracy "$T/out") == $(jq .accuracy "$T/eval.json") && $(jq .f1 "$T/out") == $(jq .f1 "$T/eval.json") ]] &&
  pass "em-metrics accuracy equals em-eval's" || fail "em-metrics accuracy differs"
expect_exit 1 "em-eval --split test on a dataset without one" -- "$EM_BIN/em-eval" --model "$T/a/model" --data "$data" --split test -q
expect_stderr "$data/test: missing split folder" "the error names the absent split folder"
imgs=("$data"/validation/*/*.png)  # sorted; no `find | sort | head`, which SIGPIPEs under pipefail on long lists
img=${imgs[0]}
set +e; "$EM_BIN/em-b64" "$img" | "$EM_BIN/em-predict" --model "$T/a/model" --top_k 3 >"$T/pred.json" 2>"$T/err"; rc=$?; set -e
[[ $rc -eq 0 ]] && jq -e 'length == 3 and (.[0].score >= .[1].score) and (.[0].label|type=="string")' "$T/pred.json" >/dev/null &&
  pass "em-b64 | em-predict gives 3 labels sorted by score" || fail "em-predict: rc $rc $(cat "$T/pred.json") $(cat "$T/err")"
img2=${imgs[1]}
expect_exit 0 "em-predict on image paths" -- "$EM_BIN/em-predict" --model "$T/a/model" "$img" "$img2"
[[ $(wc -l <"$T/out") -eq 2 ]] && jq -se --arg a "$img" --arg b "$img2" \
  'map(.image) == [$a, $b] and all(.[]; (keys == ["image", "predictions"]) and (.predictions | length) == 5)' "$T/out" >/dev/null &&
  pass "two images: JSONL, one {image, predictions} line per image, in order" || fail "em-predict: $(cat "$T/out")"
# (Batched with another image, the scores may differ in the last digits from the request's batch of one.)
jq -se --slurpfile one "$T/pred.json" '[.[0].predictions[:3], $one[0]] | transpose
    | all(.[0].label == .[1].label and ((.[0].score - .[1].score) | fabs) < 1e-5)' "$T/out" >/dev/null &&
  pass "  ... the predictions are the response em-b64 | em-predict gives" || fail "em-predict paths vs request: $(head -c 300 "$T/out") vs $(cat "$T/pred.json")"
expect_exit 0 "em-predict on one image path" -- "$EM_BIN/em-predict" --model "$T/a/model" "$img" --compact
jq -e --arg a "$img" '.image == $a and (.predictions | length) == 5' "$T/out" >/dev/null && [[ $(wc -l <"$T/out") -eq 1 ]] &&
  pass "  ... one image: the same shape, one line (--compact is accepted)" || fail "em-predict one path: $(head -c 300 "$T/out")"
expect_exit 0 "em-predict --bf16 IMAGE IMAGE" -- "$EM_BIN/em-predict" --model "$T/a/model" --bf16 "$img" "$img"
[[ $(wc -l <"$T/out") -eq 2 ]] && pass "  ... a bare --bf16 does not take an image path" || fail "em-predict --bf16: $(head -c 200 "$T/out")"
expect_exit 0 "em-predict --bf16 false IMAGE (a platform's string boolean)" -- "$EM_BIN/em-predict" --model "$T/a/model" --bf16 false "$img"
jq -e '(.predictions | length) == 5 and (.predictions[0].label | type == "string")' "$T/out" >/dev/null && pass "  ... one image's answer" || fail "em-predict --bf16 false: $(head -c 200 "$T/out")"
set +e; "$EM_BIN/em-b64" "$img" "$img2" | "$EM_BIN/em-predict" --model "$T/a/model" >"$T/out" 2>"$T/err"; rc=$?; set -e
[[ $rc -eq 0 ]] && jq -e 'type == "array" and length == 2 and (.[0] | type == "array") and (.[0][0].label | type == "string")' "$T/out" >/dev/null &&
  pass "a request with two instances keeps the platform's shape: a list of two lists" || fail "em-predict request of two: rc $rc $(head -c 300 "$T/out")"
expect_exit 2 "em-predict --output_dir with a classification model is a usage error" -- \
  "$EM_BIN/em-predict" --model "$T/a/model" --output_dir "$T/maps" "$img"
expect_stderr "--output_dir .*only segmentation models write label maps \(this model is classification\)" \
  "  ... naming what the model is"

# The progress line's training speed (stderr) agrees with the run's own throughput (train_results.json, which also
# counts start-up and saving, so the progress figure may only be higher).
expect_exit 0 "em-train with progress on stderr" -- "$EM_BIN/em-train" --algo classification --data "$data" \
  --model_config "$cfg" --num_workers 1 --per_device_train_batch_size 8 --learning_rate 1e-3 \
  --output_dir "$T/p" --num_train_epochs 2 --logging_steps 4
if [[ -z ${OMP_NUM_THREADS:-}${MKL_NUM_THREADS:-} ]]; then
  expect_stderr "$(nproc) threads?" "without --threads, training uses every usable CPU ($(nproc))"
fi
shown=$({ grep -o '[0-9.]* img/s' "$T/err" || true; } | tail -n 1 | cut -d' ' -f1)  # none: reported below
overall=$(jq .train_samples_per_second "$T/p/train_results.json")
python3 -c "import sys; s, o = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if o * 0.7 <= s <= o * 4 else 1)" "${shown:-0}" "$overall" &&
  pass "progress shows $shown img/s (whole run: $overall)" || fail "progress shows ${shown:-nothing} img/s, the run did $overall"
# The line's loss is the logging window's mean (docs/training.md): at the last step, what metrics.jsonl logged.
last_line=$(grep -E 'train: step [0-9]+/[0-9]+ \(100%\)' "$T/err" || true)
[[ $(grep -c . <<<"$last_line") -eq 1 ]] && pass "the final progress line is printed once" ||
  fail "final progress lines: $last_line"
shown_loss=$(grep -o 'loss [0-9.]*' <<<"$last_line" | tail -n 1 | cut -d' ' -f2)
logged_loss=$(jq -s '[.[] | select(.loss != null)] | last | .loss' "$T/p/metrics.jsonl")
python3 -c "import sys; sys.exit(0 if f'{float(sys.argv[2]):.4f}' == sys.argv[1] else 1)" "${shown_loss:-x}" "$logged_loss" &&
  pass "the progress line's loss ($shown_loss) is the logged window mean ($logged_loss)" ||
  fail "progress line loss ${shown_loss:-none}, metrics.jsonl ${logged_loss}"

# 3. Refusals and usage errors.
expect_exit 2 "an output dir holding a run is refused" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/a"
expect_stderr "overwrite_output_dir" "the refusal names --overwrite_output_dir"
expect_exit 2 "learning_rate -1 is a usage error" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --learning_rate -1
expect_stderr "learning_rate.*-1.*\[0, inf\)" "the message names parameter, value and range"
echo '{"learning_rate": "1e-3", "per_device_train_batch_size": "1"}' >"$T/hp.json"
expect_exit 2 "batch size 1 for classification (file) is refused" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/x" --hyperparameters "$T/hp.json"
expect_stderr "per_device_train_batch_size" "the message names the parameter"
echo '{"num_train_epochs": "2.5"}' >"$T/hp.json"
expect_exit 2 "fractional epochs for classification are refused" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/x" --hyperparameters "$T/hp.json"
echo '{"learning_rat": 0.1}' >"$T/hp.json"
expect_exit 2 "an unknown hyperparameter name is refused" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --hyperparameters "$T/hp.json"
expect_stderr "learning_rat" "the message names the unknown parameter"
expect_exit 2 "threshold does not apply to classification" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --threshold 0.3
# A segmentation folder (train/images, train/annotations, train/train.json) would read as a classification dataset
# with the labels "annotations" and "images": refused before anything is read or written, naming the layout.
seg=$T/segfolder
for split in train validation; do
  mkdir -p "$seg/$split/images" "$seg/$split/annotations"
  cp "$EM_SOURCE/tests/golden/image/rgb_37x23.png" "$seg/$split/images/a.png"
  cp "$EM_SOURCE/tests/golden/image/gray_29x31.png" "$seg/$split/annotations/a.png"
  echo '[{"image": "images/a.png", "seg_map": "annotations/a.png"}]' >"$seg/$split/$split.json"
done
expect_exit 1 "em-train --algo classification on a segmentation folder is refused" -- \
  "$EM_BIN/em-train" --algo classification --data "$seg" --output_dir "$T/wrong" --threads 1 -q
expect_stderr "segfolder: looks like a segmentation dataset \(train/images, train/annotations, train/train.json\), not classification: use --algo segmentation" \
  "  ... naming the layout it looks like and the --algo to use"
[[ ! -e $T/wrong ]] && pass "  ... before the output dir is made" || fail "the refused run wrote $T/wrong"
if [[ -d ${EM_SHARED:-}/data/camvid-mini ]]; then
  expect_exit 1 "em-train --algo classification on the real camvid-mini is refused" -- \
    "$EM_BIN/em-train" --algo classification --data "$EM_SHARED/data/camvid-mini" --output_dir "$T/wrong" --threads 1 -q
  expect_stderr "camvid-mini: looks like a segmentation dataset" "  ... as a segmentation dataset"
fi
expect_exit 1 "em-eval of a classification model on a segmentation folder is refused" -- \
  "$EM_BIN/em-eval" --model "$T/a/model" --data "$seg" --threads 1
expect_stderr "not classification: use --algo segmentation" "  ... with the same message"
touch "$T/mine.txt"; mkdir -p "$T/keep" && echo "user data" >"$T/keep/notes.txt"
cp -r "$T/a" "$T/b" && cp "$T/keep/notes.txt" "$T/b/notes.txt"
expect_exit 0 "--overwrite_output_dir replaces a run" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/b" --num_train_epochs 1 --overwrite_output_dir --compact
[[ $(wc -l <"$T/out") -eq 1 ]] && jq -e '.global_step == 6' "$T/out" >/dev/null &&
  pass "  ... --compact is accepted; the summary is one JSON line" || fail "em-train --compact: $(head -c 300 "$T/out")"
[[ -f $T/b/notes.txt ]] && pass "a file emkit did not write survives --overwrite_output_dir" || fail "notes.txt deleted"
[[ ! -d $T/b/checkpoint-24 ]] && pass "the old run's checkpoints are gone" || fail "old checkpoint-24 still there"

echo '{"learning_rate": "1e-3", "num_train_epochs": 1, "save_steps": "2"}' >"$T/hp.json"
expect_exit 0 "string values in a hyperparameters file are accepted" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/h" --hyperparameters "$T/hp.json" --load_best_model_at_end --save_strategy epoch --save_steps 5
jq -e '.save_steps == 5 and .learning_rate == 0.001 and .num_train_epochs == 1' "$T/h/hyperparameters.json" >/dev/null &&
  pass "flags win over the file; file strings parsed" || fail "hyperparameters.json: $(cat "$T/h/hyperparameters.json")"
jq -e '.load_best_model_at_end == true and .bf16 == false' "$T/h/hyperparameters.json" >/dev/null &&
  pass "a bare boolean flag (--load_best_model_at_end) is true" || fail "hyperparameters.json: $(cat "$T/h/hyperparameters.json")"
expect_exit 0 "a run at input_size 7 (images are 28x28)" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/tinyin" \
  --num_train_epochs 1 --input_size 7
expect_stderr "input_size 7 shrinks images at least 28 pixels on a side .*--input_size 224" \
  "  ... warns that input_size is far below the images' sizes"
expect_exit 2 "a bare boolean flag before another option parses (the later check refuses --threshold)" -- \
  "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --bf16 --threshold 0.3
expect_stderr "threshold does not apply to --algo classification" "  ... --bf16 took no value"
expect_exit 2 "--bf16 false parses as a value" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --bf16 false --threshold 0.3
expect_stderr "threshold does not apply to --algo classification" "  ... and the next option still parses"
expect_exit 0 "em-train --help" -- "$EM_BIN/em-train" --help
grep -q "learning rate \[float \[0, inf); every algorithm; default 0.1 (classification), 0.0002 (segmentation, detection)\]" "$T/out" &&
  grep -q "default 512 (segmentation), 800 (detection)" "$T/out" &&
  pass "--help shows each hyperparameter's defaults per algorithm (the platform's table)" ||
  fail "em-train --help lacks the defaults: $(grep -A1 learning_rate "$T/out")"
expect_exit 2 "--learning-rate (dashes) is refused" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --learning-rate 1e-3
expect_stderr "did you mean --learning_rate\?" "  ... suggesting --learning_rate"
expect_exit 2 "--bf16 maybe is refused naming the value" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/x" --bf16 maybe
expect_stderr "bf16: invalid value 'maybe' \(expected true or false\)" "  ... with what is valid"

# 4. SIGKILL after a checkpoint, then resume: same losses, bit-identical weights.
"$EM_BIN/em-train" "${common[@]}" --output_dir "$T/k" --num_train_epochs 4 2>/dev/null >/dev/null &
pid=$!
for _ in $(seq 1 600); do [[ -f $T/k/checkpoint-6/trainer_state.json ]] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
expect_exit 0 "resume after SIGKILL" -- "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/k" --num_train_epochs 4 --resume_from_checkpoint
cmp -s "$T/a/model/model.safetensors" "$T/k/model/model.safetensors" && pass "resumed weights are bit-identical" || fail "resumed weights differ"
diff <(jq -c 'select(.loss != null) | [.step, .loss]' "$T/a/metrics.jsonl") <(jq -c 'select(.loss != null) | [.step, .loss]' "$T/k/metrics.jsonl") >/dev/null &&
  pass "resumed run logs the same losses" || fail "losses differ after resume"

# 5. SIGTERM: finish the step, save a checkpoint, exit 130.
"$EM_BIN/em-train" "${common[@]}" --output_dir "$T/s" --num_train_epochs 100000 --save_steps 100000 >/dev/null 2>"$T/s.err" &
pid=$!
for _ in $(seq 1 600); do [[ -s $T/s/metrics.jsonl ]] && break; sleep 0.05; done
kill -TERM $pid || true; set +e; wait $pid; rc=$?; set -e
[[ $rc -eq 130 ]] && pass "SIGTERM exits 130" || fail "SIGTERM exit $rc: $(tail -3 "$T/s.err")"
ls -d "$T"/s/checkpoint-* >/dev/null 2>&1 && pass "SIGTERM left a checkpoint" || fail "no checkpoint after SIGTERM"
finish
