#!/usr/bin/env bash
# Data-parallel runs on loopback (docs/distributed.md): em-train --nproc_per_node 2, torchrun, SLURM-style variables;
# only rank 0 writes; em-eval over 2 processes prints the metrics of 1 process for all three algorithms.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq is not installed"
[[ -x $EM_BIN/em-train && -x $EM_BIN/em-eval ]] || skip "em-train or em-eval is not built"

data=$T/fashion
make_fashion_dataset "$data" 40 21
write_tiny_resnet_config "$T/tiny.json"
common=(--algo classification --data "$data" --model_config "$T/tiny.json" --threads 1 --num_workers 1
        --per_device_train_batch_size 4 --learning_rate 1e-3 --num_train_epochs 1 --logging_steps 1 --save_steps 3
        --ddp_timeout 60)

# 1. The launcher without Python.
expect_exit 0 "em-train --nproc_per_node 2" -- "$EM_BIN/em-train" "${common[@]}" --nproc_per_node 2 --output_dir "$T/np"
expect_stderr "starting 2 worker processes" "the launcher says what it starts"
expect_stderr "data-parallel: 2 processes x batch 4 = 8 images per step" "rank 0 names the global batch"
grep -q '^\[rank 1\] em-train: ' "$T/err" && fail "rank 1 printed although nothing went wrong: $(grep '^\[rank 1\]' "$T/err" | head -3)" ||
  pass "rank 1 prints nothing when all is well"
[[ $(grep -c . "$T/out") -eq 1 ]] && jq -e '.global_step == 5 and .world_size == 2' "$T/out" >/dev/null &&
  pass "one summary on stdout (rank 0's): 40 images / 8 per step = 5 steps" || fail "stdout: $(cat "$T/out")"
jq -se 'map(select(.loss != null)) | map(.step) == [1, 2, 3, 4, 5]' "$T/np/metrics.jsonl" >/dev/null &&
  pass "metrics.jsonl: one line per step, written once" || fail "metrics.jsonl: $(cat "$T/np/metrics.jsonl")"
[[ $(find "$T/np/runs" -name 'events.out.tfevents.*' | wc -l) -eq 1 ]] && pass "one TensorBoard events file" ||
  fail "events files: $(find "$T/np/runs" -type f)"
ls -d "$T/np"/checkpoint-* | sed 's|.*/||' | tr '\n' ' ' | grep -qx 'checkpoint-3 checkpoint-5 ' &&
  pass "checkpoints 3 and 5" || fail "checkpoints: $(ls "$T/np")"
jq -e '.world_size == 2 and .global_batch_size == 8' "$T/np/checkpoint-5/trainer_state.json" >/dev/null &&
  pass "trainer_state.json records 2 processes x 4" || fail "trainer_state: $(jq -c '{world_size, global_batch_size}' "$T/np/checkpoint-5/trainer_state.json")"
[[ -f $T/np/model/model.safetensors && -f $T/np/eval_results.json ]] && pass "model/ and eval_results.json" ||
  fail "run directory: $(ls "$T/np")"

# 2. torchrun (Debian's python3-torch: python3 -m torch.distributed.run), static rendezvous on loopback: the agent
#    hosts the store (TORCHELASTIC_USE_AGENT_STORE). Debian 12's 1.13 launcher dies under Python 3.11 before starting
#    any worker; then tests/cli/torchrun_agent.py starts the workers with the same store and variables.
if /usr/bin/python3 -c 'import torch.distributed.run' 2>/dev/null; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if /usr/bin/python3 -m torch.distributed.run --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 \
       --master_port "$port" --no_python /bin/true >/dev/null 2>&1; then
    launcher=(/usr/bin/python3 -m torch.distributed.run --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1
              --master_port "$port" --no_python)
    what="torchrun --nproc_per_node 2 --no_python em-train"
  else
    echo "note: this python3-torch's torchrun cannot start workers here; its agent's contract is emulated"
    launcher=(/usr/bin/python3 "$EM_SOURCE/tests/cli/torchrun_agent.py" "$port" 2)
    what="torchrun's variables and agent store (emulated), em-train"
  fi
  expect_exit 0 "$what" -- "${launcher[@]}" "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/tr"
  jq -e '.global_step == 5 and .world_size == 2' "$T/out" >/dev/null && cmp -s "$T/np/model/model.safetensors" "$T/tr/model/model.safetensors" &&
    pass "  ... the same run as --nproc_per_node's, bit for bit" || fail "torchrun: $(cat "$T/out") $(tail -5 "$T/err")"
else
  echo "note: /usr/bin/python3 has no torch.distributed (python3-torch); the torchrun case is not run"
fi

# 3. SLURM-style variables (srun sets them), MASTER_ADDR/MASTER_PORT from the environment.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for r in 0 1; do
  SLURM_PROCID=$r SLURM_NTASKS=2 SLURM_LOCALID=$r SLURM_NTASKS_PER_NODE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$EM_BIN/em-train" "${common[@]}" --output_dir "$T/sl" >"$T/sl$r.out" 2>"$T/sl$r.err" &
  pids[$r]=$!
done
rc0=0; rc1=0; wait "${pids[0]}" || rc0=$?; wait "${pids[1]}" || rc1=$?
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] && cmp -s "$T/np/model/model.safetensors" "$T/sl/model/model.safetensors" &&
  pass "SLURM_PROCID/SLURM_NTASKS: the same run" || fail "slurm: rc $rc0 $rc1; $(tail -3 "$T/sl0.err") $(tail -3 "$T/sl1.err")"
[[ -s $T/sl0.out && ! -s $T/sl1.out ]] && pass "only rank 0 prints the summary" || fail "stdout of ranks: $(cat "$T/sl1.out")"

# 4. em-eval over 2 processes prints what 1 process prints (21 images: shards of 11 and 10).
expect_exit 0 "em-eval, 1 process" -- "$EM_BIN/em-eval" --model "$T/np/model" --data "$data" --threads 1 --compact
cp "$T/out" "$T/eval1.json"
expect_exit 0 "em-eval --nproc_per_node 2" -- "$EM_BIN/em-eval" --model "$T/np/model" --data "$data" --threads 1 --compact --nproc_per_node 2
cmp -s "$T/out" "$T/eval1.json" && jq -e '.confusion_matrix.matrix | flatten | add == 21' "$T/out" >/dev/null &&
  pass "classification: identical metrics JSON, 21 images counted once" || fail "em-eval: $(cat "$T/out") vs $(cat "$T/eval1.json")"

# Segmentation (IoU areas summed) and detection (COCO detections gathered): a tiny model trained a few steps in one
# process, then evaluated by 1 and by 2 processes.
eval_both() {  # NAME MODEL DATA
  expect_exit 0 "$1: em-eval, 1 process" -- "$EM_BIN/em-eval" --model "$2" --data "$3" --threads 1 --compact --batch_size 1
  cp "$T/out" "$T/eval1.json"
  expect_exit 0 "$1: em-eval --nproc_per_node 2" -- "$EM_BIN/em-eval" --model "$2" --data "$3" --threads 1 --compact \
    --batch_size 1 --nproc_per_node 2
  cmp -s "$T/out" "$T/eval1.json" && pass "$1: identical metrics JSON" || fail "$1: $(head -c 300 "$T/out") vs $(head -c 300 "$T/eval1.json")"
}
camvid=$EM_SHARED/data/camvid-mini
if [[ -f $camvid/train/train.json ]]; then
  cat >"$T/seg.json" <<'JSON'
{"model_type": "segformer", "num_encoder_blocks": 4, "depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 48, 64],
 "num_attention_heads": [1, 2, 2, 4], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2],
 "mlp_ratios": [2, 2, 2, 2], "decoder_hidden_size": 32}
JSON
  expect_exit 0 "a tiny SegFormer on camvid-mini" -- "$EM_BIN/em-train" --algo segmentation --data "$camvid" \
    --model_config "$T/seg.json" --image_size 64 --threads 1 --num_workers 1 -q --per_device_train_batch_size 4 \
    --learning_rate 2e-3 --num_train_epochs 1 --eval_strategy no --output_dir "$T/seg"
  eval_both segmentation "$T/seg/model" "$camvid"
else
  echo "note: $camvid is absent; the segmentation case is not run"
fi
coco=$EM_SHARED/data/coco-mini
if [[ -f $coco/train/_annotations.coco.json ]]; then
  cat >"$T/detr.json" <<'JSON'
{"model_type": "detr", "backbone": "resnet18", "d_model": 64, "encoder_layers": 1, "decoder_layers": 1,
 "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
 "num_queries": 32, "dropout": 0.0, "auxiliary_loss": false}
JSON
  expect_exit 0 "a tiny DETR on coco-mini" -- "$EM_BIN/em-train" --algo detection --data "$coco" \
    --model_config "$T/detr.json" --image_size 64 --augmentation none --threads 1 --num_workers 1 -q \
    --per_device_train_batch_size 2 --learning_rate 1e-3 --num_train_epochs 10 --eval_strategy no --output_dir "$T/det"
  eval_both detection "$T/det/model" "$coco"
  jq -e '.AP != null and (.per_class | length) > 0' "$T/out" >/dev/null && pass "detection: the 12 COCO numbers and per class" ||
    fail "detection metrics: $(head -c 300 "$T/out")"
else
  echo "note: $coco is absent; the detection case is not run"
fi
finish
