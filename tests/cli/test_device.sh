#!/usr/bin/env bash
# --device for em-predict, em-eval and em-serve (docs/devices.md): --device cpu gives what the default (auto) gives
# on this machine; a device that cannot be used exits 2 with a message naming the flag and the reason; a malformed
# --device or LOCAL_RANK exits 2. Where CUDA is present (EM_TEST_DEVICE=cuda, scripts/device_check.sh requires it),
# --device cuda runs and answers what the CPU answers within a tolerance.
source "$(dirname "$0")/lib.sh"
[[ -x $EM_BIN/em-predict && -x $EM_BIN/em-eval && -x $EM_BIN/em-serve && -x $EM_BIN/em-train ]] ||
  skip "em-predict, em-eval, em-serve or em-train is not built"
command -v python3 >/dev/null || skip "python3 is not installed"

train_tiny_classifier 20 6
mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 3)

for tool in em-predict em-eval em-serve; do
  expect_exit 0 "$tool --help" -- "$EM_BIN/$tool" --help
  grep -q -- '--device' "$T/out" && pass "$tool --help lists --device" || fail "$tool --help lacks --device"
done

# The CPU, named or by default.
expect_exit 0 "em-predict (default device)" -- "$EM_BIN/em-predict" --model "$model" --threads 1 "${imgs[@]}"
cp "$T/out" "$T/predict.default"
expect_exit 0 "em-predict --device cpu" -- "$EM_BIN/em-predict" --model "$model" --threads 1 --device cpu "${imgs[@]}"
cp "$T/out" "$T/predict.cpu"
expect_exit 0 "em-eval --device cpu" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 --device cpu
cp "$T/out" "$T/eval.cpu"

# Malformed values are usage errors that name what is wrong, whatever the machine has.
expect_exit 2 "em-predict --device gpu" -- "$EM_BIN/em-predict" --model "$model" --device gpu "${imgs[0]}"
expect_stderr "--device gpu: expected auto, cpu, cuda or cuda:N" "the message names the flag, the value and the choices"
expect_exit 2 "em-eval --device cuda:x" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --device cuda:x
expect_stderr "--device cuda:x" "em-eval names the value"
expect_exit 2 "em-predict --device cuda:99 (no such device)" -- \
  "$EM_BIN/em-predict" --model "$model" --device cuda:99 "${imgs[0]}"
expect_stderr "--device cuda:99" "the message names the device asked for"
expect_exit 2 "LOCAL_RANK=x em-predict" -- env LOCAL_RANK=x "$EM_BIN/em-predict" --model "$model" "${imgs[0]}"
expect_stderr "LOCAL_RANK=x" "the message names LOCAL_RANK"

# --device cuda: a usage error naming the reason without CUDA; the CPU's answers with it.
set +e
"$EM_BIN/em-predict" --model "$model" --threads 1 --device cuda "${imgs[@]}" >"$T/predict.cuda" 2>"$T/cuda.err"
cuda_rc=$?
set -e
if [[ $cuda_rc -eq 2 ]]; then
  [[ ${EM_TEST_DEVICE:-} == cuda ]] && fail "EM_TEST_DEVICE=cuda, but --device cuda was refused: $(cat "$T/cuda.err")"
  pass "em-predict --device cuda without CUDA (exit 2)"
  grep -Eq -- "--device cuda: (this LibTorch has no CUDA|no CUDA device is visible).*--device cpu" "$T/cuda.err" &&
    pass "the message says why and what to use" || fail "em-predict --device cuda: message: $(cat "$T/cuda.err")"
  cmp -s "$T/predict.default" "$T/predict.cpu" && pass "without CUDA, auto is the CPU: the same bytes" ||
    fail "em-predict: default and --device cpu differ without CUDA"
  expect_exit 2 "em-eval --device cuda without CUDA" -- \
    "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 --device cuda
  expect_stderr "--device cuda: .*--device cpu" "em-eval says why and what to use"
  expect_exit 2 "em-serve --device cuda without CUDA" -- \
    "$EM_BIN/em-serve" --model "$model" --port 0 --threads 1 --device cuda
  expect_stderr "--device cuda: .*--device cpu" "em-serve says why and what to use, before it listens"
  grep -q "listening" "$T/err" && fail "em-serve --device cuda listened before failing" || pass "em-serve never listened"
  expect_exit 2 "em-train --device cuda without CUDA" -- "$EM_BIN/em-train" --algo classification --data "$data" \
    --output_dir "$T/train-cuda" --threads 1 --device cuda
  expect_stderr "--device cuda: .*--device cpu" "em-train says why and what to use"
  [[ ! -e $T/train-cuda ]] && pass "em-train wrote nothing" || fail "em-train --device cuda created its output folder"
  # --fp16 is CUDA's: refused on the CPU before anything is written, also before --nproc_per_node starts workers.
  expect_exit 2 "em-train --fp16 without CUDA" -- "$EM_BIN/em-train" --algo classification --data "$data" \
    --output_dir "$T/train-fp16" --threads 1 --fp16
  expect_stderr "--fp16: .*CUDA.*--bf16" "em-train --fp16 says it needs CUDA and what to use instead"
  expect_exit 2 "em-train --fp16 --nproc_per_node 2 without CUDA" -- "$EM_BIN/em-train" --algo classification \
    --data "$data" --output_dir "$T/train-fp16" --threads 1 --fp16 --nproc_per_node 2
  grep -q "rank" "$T/err" && fail "em-train --fp16 --nproc_per_node started workers: $(head -c 300 "$T/err")" ||
    pass "no worker was started"
  [[ ! -e $T/train-fp16 ]] && pass "em-train --fp16 wrote nothing" || fail "em-train --fp16 created its output folder"
elif [[ $cuda_rc -eq 0 ]]; then
  pass "em-predict --device cuda (exit 0)"
  # Same labels first; scores within 1e-2 (TF32 convolutions on the GPU round differently from the CPU's fp32).
  close_answers() {
    python3 - "$1" "$2" <<'PY'
import json, sys
want, got = (json.load(open(p)) for p in sys.argv[1:3])
ok = len(want) == len(got) and all(
    w[0]["label"] == g[0]["label"] and all(abs(a["score"] - b["score"]) <= 1e-2 for a, b in
        zip(sorted(w, key=lambda d: d["label"]), sorted(g, key=lambda d: d["label"])))
    for w, g in zip(want, got))
sys.exit(0 if ok else 1)
PY
  }
  close_answers "$T/predict.cpu" "$T/predict.cuda" && pass "em-predict: CUDA answers the CPU's labels and scores" ||
    fail "em-predict: CUDA and CPU answers differ: $(head -c 300 "$T/predict.cuda") vs $(head -c 300 "$T/predict.cpu")"
  expect_exit 0 "em-eval --device cuda" -- "$EM_BIN/em-eval" --model "$model" --data "$data" --threads 1 --device cuda
  python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(0 if abs(a["accuracy"]-b["accuracy"]) <= 0.2 else 1)' \
    "$T/eval.cpu" "$T/out" && pass "em-eval: CUDA accuracy within one image in five of the CPU's" ||
    fail "em-eval: CUDA $(head -c 200 "$T/out") vs CPU $(head -c 200 "$T/eval.cpu")"
  "$EM_BIN/em-b64" "${imgs[0]}" >"$T/one.json"
  "$EM_BIN/em-predict" --model "$model" --threads 1 --device cpu <"$T/one.json" >"$T/one.cpu"
  "$EM_BIN/em-serve" --model "$model" --port 0 --threads 1 --device cuda 2>"$T/serve.err" &
  pid=$! port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$T/serve.err" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -n $port ]] && command -v curl >/dev/null; then
    curl -s --data-binary @"$T/one.json" "http://127.0.0.1:$port/inference" >"$T/one.cuda"
    python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(0 if a[0]["label"]==b[0]["label"] and abs(a[0]["score"]-b[0]["score"])<=1e-2 else 1)' \
      "$T/one.cpu" "$T/one.cuda" && pass "em-serve --device cuda answers the CPU's label" ||
      fail "em-serve --device cuda: $(head -c 300 "$T/one.cuda")"
  else
    fail "em-serve --device cuda did not start (or curl is missing): $(tail -3 "$T/serve.err")"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # fp16 training on the GPU: loss scaling runs, its scale is in the results and in every checkpoint.
  expect_exit 0 "em-train --device cuda --fp16" -- "$EM_BIN/em-train" --algo classification --data "$data" \
    --output_dir "$T/train-fp16" --threads 1 --device cuda --fp16 --num_train_epochs 2 --save_steps 1 \
    --learning_rate 1e-3 --per_device_train_batch_size 4
  python3 - "$T/out" "$T/train-fp16" <<'PY' && pass "fp16: loss_scale reported and kept in the checkpoints" ||
import glob, json, sys
res = json.load(open(sys.argv[1]))
states = [json.load(open(p)) for p in glob.glob(sys.argv[2] + "/checkpoint-*/trainer_state.json")]
ok = res["loss_scale"] > 0 and states and all(s["grad_scaler"]["scale"] > 0 for s in states)
sys.exit(0 if ok else 1)
PY
    fail "fp16: no loss_scale in $(head -c 300 "$T/out")"
else
  fail "em-predict --device cuda: exit $cuda_rc (expected 0 with CUDA, 2 without): $(head -c 600 "$T/cuda.err")"
fi
# Two lower precisions at once: a usage error on any machine.
expect_exit 2 "em-train --bf16 --fp16" -- "$EM_BIN/em-train" --algo classification --data "$data" \
  --output_dir "$T/train-both" --threads 1 --bf16 --fp16
expect_stderr "bf16 and fp16" "the message names both"
finish
