#!/usr/bin/env bash
# SIGKILL at random moments while em-train writes and rotates checkpoints (save_steps 1, save_total_limit 2): after
# every kill the latest checkpoint that is listed as complete loads (em-predict on it answers), the next run claims
# the folder without complaint, and resuming from it finishes (docs/reliability.md).
source "$(dirname "$0")/lib.sh"
for tool in em-train em-predict; do [[ -x $EM_BIN/$tool ]] || skip "$tool is not built"; done
command -v python3 >/dev/null || skip "python3 is not installed"

data=$T/fashion
make_fashion_dataset "$data" 40 6
write_tiny_resnet_config "$T/tiny.json"
img=$(find "$data/validation" -name '*.png' | sort | head -n 1)
out=$T/run
args=(--algo classification --data "$data" --model_config "$T/tiny.json" --output_dir "$out" --threads 1
      --num_workers 1 --per_device_train_batch_size 2 --num_train_epochs 10 --save_steps 1 --save_total_limit 2
      --eval_strategy no --logging_steps 1 -q)
RANDOM=7
for trial in 1 2 3 4 5 6; do
  if [[ $trial -eq 1 ]]; then "$EM_BIN/em-train" "${args[@]}" >/dev/null 2>"$T/err.$trial" &
  else "$EM_BIN/em-train" "${args[@]}" --resume_from_checkpoint >/dev/null 2>"$T/err.$trial" & fi
  pid=$!
  # Wait for a checkpoint, then kill somewhere in the next 0-2 s (many checkpoint writes).
  for _ in $(seq 1 300); do compgen -G "$out/checkpoint-*/trainer_state.json" >/dev/null && break; sleep 0.05; done
  sleep "$((RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  latest=$(ls -d "$out"/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1)
  if [[ -z $latest ]]; then fail "trial $trial: no checkpoint listed: $(tail -3 "$T/err.$trial")"; continue; fi
  ckpt=$out/checkpoint-$latest
  if [[ -f $ckpt/trainer_state.json ]] && "$EM_BIN/em-predict" --model "$ckpt" --threads 1 "$img" >/dev/null 2>"$T/predict.err"; then
    pass "trial $trial: killed, the latest checkpoint ($latest) loads"
  else
    fail "trial $trial: $ckpt does not load: $(tail -2 "$T/predict.err")"
  fi
done
expect_exit 0 "resuming after the last kill finishes" -- "$EM_BIN/em-train" "${args[@]}" --resume_from_checkpoint
leftovers=$(find "$out" -maxdepth 1 -name '.tmp-*' | wc -l)
[[ $leftovers -eq 0 ]] && pass "no leftovers after a run that claimed the folder" || fail "$leftovers .tmp-* leftovers in $out"
[[ -f $out/model/model.safetensors ]] && pass "the model is written" || fail "no model/ after the last run"
finish
