#!/usr/bin/env bash
# The flags em-predict, em-eval and em-serve share (tools/common/predict_flags.cpp): --batch_size is the one name
# for images per forward pass; the older names (em-eval's --per_device_eval_batch_size, em-serve's --max_batch_size)
# still work and set the same value; a batch size below 1 is a usage error naming the flag.
source "$(dirname "$0")/lib.sh"
[[ -x $EM_BIN/em-predict && -x $EM_BIN/em-eval && -x $EM_BIN/em-serve && -x $EM_BIN/em-train ]] ||
  skip "em-predict, em-eval, em-serve or em-train is not built"

train_tiny_classifier 20 6
mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 3)

for tool in em-predict em-eval em-serve; do
  expect_exit 0 "$tool --help" -- "$EM_BIN/$tool" --help
  grep -q -- '--batch_size' "$T/out" && pass "$tool --help lists --batch_size" || fail "$tool --help lacks --batch_size"
done

# em-predict: --batch_size 1 runs each image alone.
expect_exit 0 "em-predict --batch_size 1" -- "$EM_BIN/em-predict" --model "$model" --threads 1 --batch_size 1 "${imgs[@]}"
python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if len(r) == 3 else 1)' "$T/out" &&
  pass "em-predict --batch_size 1: one answer per image" || fail "em-predict --batch_size 1: $(head -c 300 "$T/out")"
expect_exit 2 "em-predict --batch_size 0 is a usage error" -- "$EM_BIN/em-predict" --model "$model" --batch_size 0 "${imgs[0]}"
expect_stderr "--batch_size" "the message names the flag"

# em-eval: the canonical name and the old one give the same metrics.
expect_exit 0 "em-eval --batch_size 2" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 --batch_size 2
cp "$T/out" "$T/eval.new"
expect_exit 0 "em-eval --per_device_eval_batch_size 2 (the old name)" -- \
  "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 --per_device_eval_batch_size 2
cmp -s "$T/out" "$T/eval.new" && pass "em-eval: both names give the same metrics" || fail "em-eval: the two names differ"
expect_stderr 'batches of 2 images' "em-eval logs the batch size it uses"
expect_exit 0 "em-eval without --batch_size" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1
expect_stderr 'batches of 16 images' "em-eval's default batch is classification's per_device_eval_batch_size (16)"
expect_exit 2 "em-eval --per_device_eval_batch_size 0 is a usage error" -- \
  "$EM_BIN/em-eval" --model "$model" --data "$data" --per_device_eval_batch_size 0
expect_stderr "per_device_eval_batch_size" "the message names the old spelling too"
expect_exit 2 "em-eval --batch_size 1 --per_device_eval_batch_size 2: one flag given twice" -- \
  "$EM_BIN/em-eval" --model "$model" --data "$data" --batch_size 1 --per_device_eval_batch_size 2
finish
