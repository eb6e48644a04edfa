#!/usr/bin/env bash
# examples/: the Makefile experiment runs end to end on a tiny configuration, is idempotent (a second make has
# nothing to do), and the sample requests are answered by em-predict.
source "$(dirname "$0")/lib.sh"
command -v make >/dev/null || skip "make is not installed"
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  skip "Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
write_tiny_resnet_config "$T/tiny.json"
vars=(--no-print-directory -C "$EM_SOURCE/examples" BIN="$EM_BIN" OUT="$T/exp" TRAIN=40 VALIDATION=20 LRS="1e-3 3e-4" EPOCHS=1
      MODEL_CONFIG="$T/tiny.json" THREADS=1)

expect_exit 0 "make runs the whole experiment" -- make "${vars[@]}"
grep -q "^learning_rate	accuracy	f1$" "$T/out" && pass "compare prints the table header" || fail "no table: $(head -c 300 "$T/out")"
rows=$(grep -cE '^(1e-3|3e-4)	[0-9.]+	[0-9.]+$' "$T/out" || true)
[[ $rows == 2 ]] && pass "compare has one row per learning rate" || fail "compare rows: $rows"
python3 - "$T/out" <<'PY' && pass "predict prints 3 labels sorted by score" || fail "predict output: $(tail -n 2 "$T/out")"
import json, sys
answer = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert len(answer) == 3 and answer[0]["score"] >= answer[1]["score"] >= answer[2]["score"]
PY
[[ -f $T/exp/fashion/.complete && -s $T/exp/run-lr1e-3/predictions.jsonl ]] && pass "dataset and predictions files exist" ||
  fail "missing dataset marker or predictions"
expect_exit 0 "make -q: everything is up to date after a run" -- make -q "${vars[@]}" "$T/exp/run-lr1e-3/validation_metrics.json" "$T/exp/run-lr3e-4/validation_metrics.json"

model=$T/exp/run-lr1e-3/model
expect_exit 0 "em-predict answers examples/requests/sneaker.json" -- "$EM_BIN/em-predict" --model "$model" --input "$EM_SOURCE/examples/requests/sneaker.json"
[[ -s $T/out ]] && jq -e 'length == 5 and (.[0].label | type == "string")' "$T/out" >/dev/null && pass "one answer of top 5" || fail "answer: $(cat "$T/out")"
expect_exit 0 "em-predict answers examples/requests/two_images.json" -- "$EM_BIN/em-predict" --model "$model" --input "$EM_SOURCE/examples/requests/two_images.json"
[[ -s $T/out ]] && jq -e 'length == 2 and (.[1] | length) == 5' "$T/out" >/dev/null && pass "two answers for two instances" || fail "answer: $(cat "$T/out")"
# The README's command, run as written from the repository root (its build/bin and examples/out mapped to this
# test's), and the default output folder is git-ignored.
readme_cmd=$(grep -o 'build/bin/em-predict --model examples/out/[^ ]* --input examples/requests/sneaker.json' \
  "$EM_SOURCE/examples/README.md" || true)
if [[ -z $readme_cmd ]]; then fail "examples/README.md has no 'build/bin/em-predict --model examples/out/...' command"
else
  read -r -a argv <<<"${readme_cmd//build\/bin/$EM_BIN}"
  argv=("${argv[@]//examples\/out/$T/exp}")
  (cd "$EM_SOURCE" && "${argv[@]}") >"$T/readme.out" 2>"$T/err" && jq -e 'length == 5' "$T/readme.out" >/dev/null &&
    pass "examples/README.md's em-predict command works from the repository root" ||
    fail "README command failed: ${argv[*]}: $(cat "$T/err")"
fi
if git -C "$EM_SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$EM_SOURCE" check-ignore -q examples/out/run-lr1e-3/model/config.json &&
    pass "examples/out/ (the Makefile's default OUT) is git-ignored" || fail "examples/out/ is not git-ignored"
fi
cmp -s "$EM_SOURCE/examples/requests/sneaker.json" <("$EM_BIN/em-b64" "$EM_SOURCE/examples/requests/sneaker.png") &&
  pass "sneaker.json is what em-b64 writes for sneaker.png" || fail "sneaker.json differs from em-b64's output"
finish
