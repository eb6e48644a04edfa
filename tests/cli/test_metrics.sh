#!/usr/bin/env bash
# em-metrics end to end: known answers (scikit-learn / HF evaluate goldens from scripts/golden/), bad inputs -> exit 1
# with a message naming the file and line, usage errors -> exit 2.
set -u
BIN=${EM_BIN:?EM_BIN must name the tools folder}
SRC=${EM_SOURCE:?EM_SOURCE must name the source tree}
command -v jq >/dev/null || { echo "skipped: jq is not installed"; exit 77; }
TMP=$(mktemp -d "${EM_TMP:-/tmp}/metrics.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$TMP"' EXIT
GOLD=$SRC/tests/golden/classification_cli
SEG=$SRC/tests/golden/segmentation_docstring
M=$BIN/em-metrics
[ -x "$M" ] || { echo "FAIL: $M is not built"; exit 1; }
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect_rc WANT CMD...: runs CMD with stdout/stderr in $TMP/out/$TMP/err and checks the exit code.
expect_rc() {
  local want=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  [ "$rc" = "$want" ] || fail "exit $rc (want $want): $* -- $(head -c 300 "$TMP/err")"
}
expect_err() { grep -qF -- "$1" "$TMP/err" || fail "stderr lacks '$1': $(head -c 300 "$TMP/err")"; }
# close KEY EXPECTED_FILE: the number at KEY in $TMP/out equals the one in EXPECTED_FILE within 1e-12.
close() {
  jq -e --argjson want "$(jq ".$1" "$2")" ".$1 - \$want | fabs < 1e-12" "$TMP/out" >/dev/null ||
    fail "$1 = $(jq ".$1" "$TMP/out" 2>/dev/null), want $(jq ".$1" "$2")"
}

# 1. JSONL truth + JSONL predictions give scikit-learn's numbers.
expect_rc 0 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$GOLD/pred.jsonl"
for k in accuracy precision recall f1; do close $k "$GOLD/expected.json"; done
jq -e '.per_class | keys == ["bird","cat","dog","fish","horse"]' "$TMP/out" >/dev/null || fail "per_class labels"
jq -e '[.confusion_matrix.matrix[][]] | add == 97' "$TMP/out" >/dev/null || fail "confusion matrix total"

# 2. The same truth as a split folder (validation/{label}/...) and predictions on stdin.
while read -r image; do mkdir -p "$TMP/data/$(dirname "$image")"; : >"$TMP/data/$image"; done \
  < <(jq -r .image "$GOLD/truth.jsonl")
expect_rc 0 bash -c "'$M' --algo classification --truth '$TMP/data/validation' --pred - --compact < '$GOLD/pred.jsonl'"
for k in accuracy precision recall f1; do close $k "$GOLD/expected.json"; done
[ "$(wc -l <"$TMP/out")" = 1 ] || fail "--compact should print one line"

# 3. Bad prediction lines name the file and line.
head -2 "$GOLD/pred.jsonl" >"$TMP/bad.jsonl"; echo '{"image": "validation/cat/001.png", "label": ' >>"$TMP/bad.jsonl"
expect_rc 1 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$TMP/bad.jsonl"
expect_err "bad.jsonl:3: invalid JSON"
echo '{"image": "validation/cat/001.png", "label": 7}' >"$TMP/bad2.jsonl"
expect_rc 1 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$TMP/bad2.jsonl"
expect_err 'bad2.jsonl:1: field "label": expected a string'

# 4. Missing predictions: an error that points at --allow_missing; with it, a warning and the predicted subset.
head -90 "$GOLD/pred.jsonl" >"$TMP/part.jsonl"
expect_rc 1 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$TMP/part.jsonl"
expect_err "7 of 97 images"; expect_err "--allow_missing"
expect_rc 0 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$TMP/part.jsonl" --allow_missing
expect_err "warning"
jq -e '[.confusion_matrix.matrix[][]] | add == 90' "$TMP/out" >/dev/null || fail "--allow_missing scores 90"

# 5. Predictions for images outside the truth are always an error.
{ cat "$GOLD/pred.jsonl"; echo '{"image": "train/cat/001.png", "label": "cat", "score": 0.5}'; } >"$TMP/extra.jsonl"
expect_rc 1 "$M" --algo classification --truth "$GOLD/truth.jsonl" --pred "$TMP/extra.jsonl" --allow_missing
expect_err "train/cat/001.png (line 98)"
expect_rc 1 "$M" --algo classification --truth "$TMP/nonexistent.jsonl" --pred "$GOLD/pred.jsonl"
expect_err "nonexistent.jsonl"

# 6. Segmentation: HF evaluate's docstring example as PNG files.
expect_rc 0 "$M" --algo segmentation --truth "$SEG/data/validation" --pred "$SEG/pred"
for k in mean_iou mean_accuracy overall_accuracy; do close $k "$SEG/expected.json"; done
jq -e '.per_category_iou.class2 == 0.375' "$TMP/out" >/dev/null || fail "per_category_iou.class2"
expect_rc 1 "$M" --algo segmentation --truth "$SEG/data/validation" --pred "$TMP"
expect_err "predicted label maps are missing"

# 7. Real CamVid maps scored against themselves: every present class 1, absent ones null (when shared/ is here).
if [ -d "${EM_SHARED:-/nonexistent}/data/camvid-mini" ]; then
  V=$EM_SHARED/data/camvid-mini/validation
  expect_rc 0 "$M" --algo segmentation --truth "$V" --pred "$V"
  jq -e '.mean_iou == 1 and .overall_accuracy == 1' "$TMP/out" >/dev/null || fail "camvid self-score is not 1"
else
  echo "note: ../shared absent, CamVid check skipped"
fi

# Detection: the shared real pair gives pycocotools' numbers; a JSONL truth is a data error naming the file.
if [ -d "${EM_SHARED:-/nonexistent}/data/coco-eval-pair" ]; then
  P=$EM_SHARED/data/coco-eval-pair
  expect_rc 0 "$M" --algo detection --truth "$P/ground_truth.json" --pred "$P/detections.json"
  jq -e --slurpfile want "$P/expected_pycocotools.json" \
    '[.AP - $want[0].stats.AP, .AR100 - $want[0].stats.AR100] | map(fabs < 1e-9) | all' "$TMP/out" >/dev/null ||
    fail "detection on coco-eval-pair differs from pycocotools"
  cp "$TMP/out" "$TMP/default-threads.json"
  # --threads reaches the COCO workers (a bad value is refused) and never changes the numbers.
  expect_rc 0 "$M" --algo detection --threads 1 --truth "$P/ground_truth.json" --pred "$P/detections.json"
  cmp -s "$TMP/out" "$TMP/default-threads.json" || fail "--threads 1 changed the detection metrics"
  expect_rc 2 "$M" --algo detection --threads -1 --truth "$P/ground_truth.json" --pred "$P/detections.json"
fi
expect_rc 1 "$M" --algo detection --truth "$GOLD/truth.jsonl" --pred "$GOLD/pred.jsonl"
expect_err "truth.jsonl"

# 8. Usage errors exit 2.
expect_rc 2 "$M" --truth "$GOLD/truth.jsonl" --pred "$GOLD/pred.jsonl"
expect_rc 2 "$M" --algo regression --truth "$GOLD/truth.jsonl" --pred "$GOLD/pred.jsonl"
expect_err "unknown algorithm"
expect_rc 2 "$M" --algo classification --truth - --pred - </dev/null
expect_rc 2 "$M" --algo classification --truth a --pred b --bogus
expect_rc 0 "$M" --help

if [ "$failures" -gt 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all em-metrics checks passed"
