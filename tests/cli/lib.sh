# Shared helpers of the CLI tests (sourced). Env from ctest: EM_BIN, EM_SHARED, EM_SOURCE, EM_TMP.
set -euo pipefail
: "${EM_BIN:?run through ctest}" "${EM_SOURCE:?}" "${EM_TMP:=/tmp/em-cli-tests}"
T=$(mktemp -d "${TMPDIR:-/tmp}/em-cli.XXXXXX")
trap '[[ -n ${EM_KEEP_TMP:-} ]] || rm -rf "$T"' EXIT
failures=0

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
finish() { if ((failures)); then echo "$failures check(s) failed" >&2; exit 1; fi; echo "all checks passed"; }

# expect_exit CODE DESCRIPTION -- command...: runs the command, captures stdout/stderr in $T/out, $T/err.
expect_exit() {
  local want=$1 what=$2; shift 3
  set +e
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  set -e
  if [[ $got -eq $want ]]; then pass "$what (exit $got)"; else fail "$what: exit $got, expected $want; stderr: $(head -c 600 "$T/err")"; fi
}
# expect_stderr PATTERN DESCRIPTION: the last command's stderr matches an extended regex.
expect_stderr() {
  if grep -Eq -- "$1" "$T/err"; then pass "$2"; else fail "$2: stderr lacks /$1/: $(head -c 600 "$T/err")"; fi
}
# expect_stdout PATTERN DESCRIPTION: the same for the last command's stdout.
expect_stdout() {
  if grep -Eq -- "$1" "$T/out"; then pass "$2"; else fail "$2: stdout lacks /$1/: $(head -c 600 "$T/out")"; fi
}

# A small real classification dataset (Fashion-MNIST from Debian's dataset-fashion-mnist) at $1.
make_fashion_dataset() {
  local out=$1 train=${2:-40} validation=${3:-20}
  [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
    skip "Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
  python3 "$EM_SOURCE/scripts/fashion_mnist_to_folder.py" --train "$train" --validation "$validation" "$out" >/dev/null 2>&1
}

# A tiny ResNet config (bottleneck, 4 stages of width 16-64) so training runs in seconds.
write_tiny_resnet_config() {
  cat >"$1" <<'JSON'
{"model_type": "resnet", "architectures": ["ResNetForImageClassification"], "num_channels": 3,
 "embedding_size": 8, "hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 1, 1], "layer_type": "bottleneck",
 "hidden_act": "relu", "downsample_in_first_stage": false, "downsample_in_bottleneck": false}
JSON
}

# train_tiny_classifier TRAIN VALIDATION: a tiny ResNet trained one epoch on Fashion-MNIST under $T (for the
# predict/serve tests); sets data (the dataset) and model (its model/ folder), or fails and finishes.
train_tiny_classifier() {
  data=$T/fashion
  make_fashion_dataset "$data" "$1" "$2"
  write_tiny_resnet_config "$T/tiny.json"
  if ! "$EM_BIN/em-train" --algo classification --data "$data" --model_config "$T/tiny.json" --output_dir "$T/run" \
       --threads 1 --num_workers 1 --per_device_train_batch_size 10 --num_train_epochs 1 -q >/dev/null 2>"$T/train.err"; then
    fail "em-train could not make a model: $(tail -3 "$T/train.err")"; finish
  fi
  model=$T/run/model
}

# start_server NAME ARGS...: em-serve of $model on a free port; sets pid, port, url; its stderr goes to $T/NAME.err
# (also $log).
start_server() {
  local name=$1; shift
  log=$T/$name.err
  "$EM_BIN/em-serve" --model "$model" --port 0 --threads 1 "$@" 2>"$log" &
  pid=$! port=
  for _ in $(seq 1 600); do
    # The log may not exist yet (the background job has not run): not an error under set -e.
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $port ]] || { fail "em-serve did not start: $(tail -3 "$log")"; finish; }
  url=http://127.0.0.1:$port
}
