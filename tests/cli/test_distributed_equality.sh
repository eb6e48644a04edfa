#!/usr/bin/env bash
# --sync_batchnorm makes 2 processes x batch 8 train like 1 process x batch 16 (docs/distributed.md): ResNet-18 at
# 32 px, same seed, --threads 1 each, 20 steps, both runs with the flag (one process then runs the same BatchNorm
# code, statistics in fp64). Bounds from the issue: every logged loss within 1e-4 relative, final weights within 1e-3
# (max |diff| / max |w|). Prints the measured figures, also against one process's native fp32 BatchNorm and for
# 2 processes without the flag. lr 1e-5 without clipping: at lr 1e-3 with clipping, AdamW's first, sign-like steps and
# the clipped (tiny) gradients amplify fp32 summation-order differences (1e-7) to 0.5 relative within 20 steps, for
# any two implementations (docs/distributed.md has the figures).
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq is not installed"
[[ -x $EM_BIN/em-train ]] || skip "em-train is not built"

data=$T/fashion
make_fashion_dataset "$data" 320 8
common=(--algo classification --data "$data" --model_config resnet-18 --input_size 32 --threads 1 --num_workers 1
        --learning_rate 1e-5 --max_grad_norm 0 --num_train_epochs 1 --logging_steps 1 --save_steps 1000 --eval_strategy no -q
        --ddp_timeout 120)
expect_exit 0 "1 process x batch 16, --sync_batchnorm (20 steps)" -- "$EM_BIN/em-train" "${common[@]}" \
  --per_device_train_batch_size 16 --sync_batchnorm --output_dir "$T/one"
expect_exit 0 "1 process x batch 16, native BatchNorm" -- "$EM_BIN/em-train" "${common[@]}" \
  --per_device_train_batch_size 16 --output_dir "$T/native"
expect_exit 0 "2 processes x batch 8, --sync_batchnorm" -- "$EM_BIN/em-train" "${common[@]}" --nproc_per_node 2 \
  --per_device_train_batch_size 8 --sync_batchnorm --output_dir "$T/sync"
expect_exit 0 "2 processes x batch 8, without --sync_batchnorm" -- "$EM_BIN/em-train" "${common[@]}" --nproc_per_node 2 \
  --per_device_train_batch_size 8 --output_dir "$T/local"

losses() { jq -c 'select(.loss != null) | .loss' "$1/metrics.jsonl" | tr '\n' ' '; }
# largest |a - b| / |b| over the logged losses of run $1 against run $2
loss_diff() {
  python3 -c '
import sys
a, b = [list(map(float, s.split())) for s in sys.argv[1:3]]
assert len(a) == len(b) == 20, (len(a), len(b))
print(f"{max(abs(x - y) / abs(y) for x, y in zip(a, b)):.3e}")' "$(losses "$1")" "$(losses "$2")"
}
sync_loss=$(loss_diff "$T/sync" "$T/one")
sync_w=$(python3 "$EM_SOURCE/tests/cli/weights_diff.py" "$T/sync/model/model.safetensors" "$T/one/model/model.safetensors")
local_loss=$(loss_diff "$T/local" "$T/one")
local_w=$(python3 "$EM_SOURCE/tests/cli/weights_diff.py" "$T/local/model/model.safetensors" "$T/one/model/model.safetensors")
native_loss=$(loss_diff "$T/sync" "$T/native")
native_w=$(python3 "$EM_SOURCE/tests/cli/weights_diff.py" "$T/sync/model/model.safetensors" "$T/native/model/model.safetensors")
echo "measured: 2 x 8 --sync_batchnorm vs 1 x 16 --sync_batchnorm: loss $sync_loss relative, weights $sync_w"
echo "measured: 2 x 8 --sync_batchnorm vs 1 x 16 native BatchNorm: loss $native_loss, weights $native_w"
echo "measured: 2 x 8 without the flag vs 1 x 16 --sync_batchnorm: loss $local_loss, weights $local_w"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-4 else 1)' "$sync_loss" &&
  pass "sync BatchNorm: every loss within 1e-4 relative ($sync_loss)" || fail "sync BatchNorm losses differ by $sync_loss"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-3 else 1)' "$sync_w" &&
  pass "sync BatchNorm: final weights within 1e-3 ($sync_w)" || fail "sync BatchNorm weights differ by $sync_w"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 1e-3 else 1)' "$local_loss" &&
  pass "without it the losses differ ($local_loss): per-process BatchNorm statistics" ||
  fail "without --sync_batchnorm the losses should differ, got $local_loss"
finish
