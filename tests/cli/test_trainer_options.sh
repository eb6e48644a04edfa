#!/usr/bin/env bash
# HF Trainer's options through em-train's flags and --hyperparameters on a tiny ResNet (24 images, batch 4: 6 batches
# an epoch): gradient_accumulation_steps and max_steps (step counts), eval_loss in metrics.jsonl, eval_results.json,
# all_results.json and TensorBoard, metric_for_best_model with load_best_model_at_end and save_total_limit (the best
# checkpoint stays), early stopping, and the combinations HF Trainer refuses (exit 2 before anything is written);
# a --hyperparameters file that holds em-train's other options too (a whole run in one file, a run's own
# hyperparameters.json reused) and threads saved and taken again on resume.
source "$(dirname "$0")/lib.sh"
for tool in em-train; do [[ -x $EM_BIN/$tool ]] || skip "$tool is not built"; done
data=$T/fashion
make_fashion_dataset "$data" 24 8
cfg=$T/tiny.json
write_tiny_resnet_config "$cfg"
base=(--algo classification --data "$data" --model_config "$cfg" --threads 1 --num_workers 1 -q
      --learning_rate 1e-3 --per_device_train_batch_size 4 --logging_steps 1)
lines() { jq -c "select($2)" "$1" | wc -l; }

# 1. Accumulation: 4 batches per optimizer step, the epoch's last step on the 2 left (HF): 2 steps an epoch.
expect_exit 0 "--gradient_accumulation_steps 4" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/acc" \
  --gradient_accumulation_steps 4 --num_train_epochs 2
jq -e '.global_step == 4 and .epoch == 2' "$T/out" >/dev/null && pass "  ... 2 optimizer steps an epoch (ceil(6 / 4))" ||
  fail "accumulation steps: $(head -c 300 "$T/out")"
[[ $(lines "$T/acc/metrics.jsonl" '.loss != null') -eq 4 ]] && pass "  ... logging_steps counts optimizer steps" ||
  fail "loss lines: $(lines "$T/acc/metrics.jsonl" '.loss != null')"
jq -se '[.[] | select(.loss != null) | .epoch] | map(. * 1000 | round) == [667, 1000, 1667, 2000]' "$T/acc/metrics.jsonl" >/dev/null &&
  pass "  ... the epoch counts batches, as HF's (4/6, 6/6, ...)" || fail "epochs: $(jq -c 'select(.loss) | .epoch' "$T/acc/metrics.jsonl" | tr '\n' ' ')"
jq -e '.gradient_accumulation_steps == 4' "$T/acc/checkpoint-4/trainer_state.json" >/dev/null &&
  pass "  ... kept in trainer_state.json" || fail "trainer_state: $(jq -c '{gradient_accumulation_steps}' "$T/acc/checkpoint-4/trainer_state.json")"

# 2. eval_loss at every evaluation, in every place the evaluation goes.
[[ $(lines "$T/acc/metrics.jsonl" '(.eval_loss | type) == "number" and .eval_accuracy != null') -eq 2 ]] &&
  pass "metrics.jsonl: eval_loss at each evaluation" || fail "eval lines: $(jq -c 'select(.eval_accuracy)' "$T/acc/metrics.jsonl")"
jq -e '(.loss | type) == "number"' "$T/acc/eval_results.json" >/dev/null && pass "eval_results.json: loss" ||
  fail "eval_results.json: $(head -c 300 "$T/acc/eval_results.json")"
jq -e '(.eval_loss | type) == "number"' "$T/acc/all_results.json" >/dev/null && pass "all_results.json: eval_loss" ||
  fail "all_results.json: $(head -c 300 "$T/acc/all_results.json")"
if python3 "$EM_SOURCE/scripts/golden/read_tfevents.py" "$T/acc/runs" >"$T/events.jsonl" 2>"$T/err"; then
  [[ $(jq -c '.summary[]? | select(.tag == "eval/loss")' "$T/events.jsonl" | wc -l) -eq 2 ]] &&
    pass "TensorBoard: eval/loss at each evaluation" || fail "eval/loss events: $(grep -c eval/loss "$T/events.jsonl")"
else
  fail "read_tfevents.py: $(head -c 300 "$T/err")"
fi

# 3. max_steps overrides num_train_epochs; the linear schedule ends at it.
expect_exit 0 "--max_steps 5 with --num_train_epochs 3" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/max" \
  --max_steps 5 --num_train_epochs 3 --eval_strategy no
jq -e '.global_step == 5' "$T/out" >/dev/null && pass "  ... stops at step 5" || fail "max_steps: $(head -c 300 "$T/out")"
jq -se '[.[] | select(.loss != null) | .learning_rate] as $lr | ($lr | length) == 5 and (($lr[4] - 2e-4) | fabs) < 1e-12' \
  "$T/max/metrics.jsonl" >/dev/null && pass "  ... the schedule's total is 5 steps (last lr 1e-3 x 1/5)" ||
  fail "learning rates: $(jq -c 'select(.loss) | .learning_rate' "$T/max/metrics.jsonl" | tr '\n' ' ')"
jq -e '.max_steps == 5' "$T/max/hyperparameters.json" >/dev/null && pass "  ... saved in hyperparameters.json" ||
  fail "hyperparameters.json: $(jq -c '{max_steps}' "$T/max/hyperparameters.json")"

# 4. metric_for_best_model eval_loss (lower is better, by HF's default) with load_best_model_at_end and
#    save_total_limit 1: model/ is the lowest eval_loss's checkpoint, the only one left at the end.
expect_exit 0 "--load_best_model_at_end --metric_for_best_model loss --save_total_limit 1" -- "$EM_BIN/em-train" \
  "${base[@]}" --output_dir "$T/best" --num_train_epochs 2 --eval_strategy steps --eval_steps 2 --save_steps 2 \
  --load_best_model_at_end --metric_for_best_model loss --save_total_limit 1
best=$(jq -s '[.[] | select(.eval_loss != null)] | min_by(.eval_loss) | .step' "$T/best/metrics.jsonl")
left=$(cd "$T/best" && ls -d checkpoint-* | tr '\n' ' ')
[[ $left == "checkpoint-$best " ]] && pass "  ... only the best checkpoint ($best) stays" || fail "checkpoints left: $left (best $best)"
cmp -s "$T/best/model/model.safetensors" "$T/best/checkpoint-$best/model.safetensors" &&
  pass "  ... model/ holds its weights" || fail "model/ differs from checkpoint-$best"
jq -e --argjson best "$best" '.best_step == $best and .best_model_checkpoint == "checkpoint-\($best)"' \
  "$T/best/checkpoint-$best/trainer_state.json" >/dev/null && pass "  ... trainer_state.json names it" ||
  fail "trainer_state: $(jq -c '{best_step, best_model_checkpoint, best_metric}' "$T/best/checkpoint-$best/trainer_state.json")"
jq -e '.metric_for_best_model == "loss" and .greater_is_better == false' "$T/best/hyperparameters.json" >/dev/null &&
  pass "  ... greater_is_better false for a loss" || fail "hyperparameters.json: $(jq -c '{metric_for_best_model, greater_is_better}' "$T/best/hyperparameters.json")"

# 5. The same options from a --hyperparameters file (strings, as platforms pass them); save_total_limit 2 keeps the
#    best checkpoint and the newest.
cat >"$T/hp.json" <<'JSON'
{"metric_for_best_model": "eval_accuracy", "greater_is_better": "true", "gradient_accumulation_steps": "2",
 "eval_strategy": "steps", "eval_steps": "1", "save_strategy": "steps", "save_steps": "1", "save_total_limit": "2",
 "load_best_model_at_end": "true", "num_train_epochs": "2"}
JSON
expect_exit 0 "the options from --hyperparameters" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/file" \
  --hyperparameters "$T/hp.json"
jq -e '.gradient_accumulation_steps == 2 and .metric_for_best_model == "eval_accuracy" and .greater_is_better == true
       and .save_total_limit == 2' "$T/file/hyperparameters.json" >/dev/null && pass "  ... saved in hyperparameters.json" ||
  fail "hyperparameters.json: $(head -c 400 "$T/file/hyperparameters.json")"
best=$(jq -s '[.[] | select(.eval_accuracy != null)] | reduce .[] as $e (null; if . == null or $e.eval_accuracy > .eval_accuracy then $e else . end) | .step' "$T/file/metrics.jsonl")
# HF: the best moves out of the oldest that go; when it is the newest, the newest two stay.
if [[ $best -eq 6 ]]; then want="checkpoint-5 checkpoint-6 "; else want="checkpoint-$best checkpoint-6 "; fi
left=$(cd "$T/file" && ls -d checkpoint-* | sort | tr '\n' ' ')
[[ $left == "$want" ]] && pass "  ... the first best accuracy's checkpoint ($best) and the newest stay" || fail "checkpoints left: $left (want $want)"

# 6. Early stopping: an improvement must beat the best by more than early_stopping_threshold; none does here, so the
#    run stops at the second evaluation (patience 1).
expect_exit 0 "--early_stopping_patience 1 --early_stopping_threshold 1000" -- "$EM_BIN/em-train" "${base[@]}" \
  --output_dir "$T/early" --num_train_epochs 2 --eval_strategy steps --eval_steps 1 --save_steps 1 \
  --early_stopping_patience 1 --early_stopping_threshold 1000 -v
jq -e '.global_step == 2' "$T/out" >/dev/null && pass "  ... stops at step 2 of 12" || fail "early stopping: $(head -c 300 "$T/out")"
expect_stderr "early stopping: 1 evaluation without an improvement of eval_accuracy" "  ... and says why"

# 7. What HF Trainer refuses is refused before anything is written (exit 2, naming the fix).
refused() {  # refused DESCRIPTION STDERR_PATTERN FLAGS...
  local what=$1 pattern=$2; shift 2
  rm -rf "$T/refused"
  expect_exit 2 "$what" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/refused" "$@"
  expect_stderr "$pattern" "  ... naming the conflict"
  [[ ! -e $T/refused ]] && pass "  ... nothing written" || fail "$what: $T/refused was created"
}
refused "load_best_model_at_end with eval_strategy epoch and save_strategy steps" \
  "save_strategy \(steps\) must match eval_strategy \(epoch\).*--save_strategy epoch" --load_best_model_at_end
refused "load_best_model_at_end with save_steps not a multiple of eval_steps" \
  "save_steps 4 is not a multiple of eval_steps 3" --load_best_model_at_end --eval_strategy steps --eval_steps 3 --save_steps 4
refused "early_stopping_threshold without early_stopping_patience" \
  "early_stopping_threshold 0.1 applies to early stopping, which is off" --early_stopping_threshold 0.1
refused "early_stopping_patience with eval_strategy no" "eval_strategy is no" --early_stopping_patience 2 --eval_strategy no
refused "an unknown metric_for_best_model" \
  "'eval_bleu' is not a metric that classification evaluations log \(they log eval_accuracy, eval_precision, eval_recall, eval_f1, eval_loss" \
  --metric_for_best_model eval_bleu
refused "max_steps 0" "max_steps: invalid value '0'" --max_steps 0
refused "gradient_accumulation_steps 0" "gradient_accumulation_steps: invalid value '0'" --gradient_accumulation_steps 0
refused "save_strategy best (not supported)" "save_strategy: invalid value 'best' \(expected one of no, epoch, steps\)" --save_strategy best
# 8. A whole run in one --hyperparameters file: em-train's other options (algo, data, output_dir, model_config,
#    threads, ...) too; flags win over it; threads saved in hyperparameters.json and taken again on resume.
cat >"$T/run.json" <<JSON
{"algo": "classification", "data": "$data", "output_dir": "$T/whole", "model_config": "$cfg", "threads": 1,
 "num_workers": 1, "per_device_train_batch_size": 4, "num_train_epochs": 1, "learning_rate": "1e-3",
 "overwrite_output_dir": true, "save_steps": 3}
JSON
expect_exit 0 "em-train --hyperparameters FILE alone (algo, data, output_dir, model_config, threads in the file)" -- \
  "$EM_BIN/em-train" --hyperparameters "$T/run.json" -q
jq -e '.threads == 1 and .num_train_epochs == 1 and .save_steps == 3' "$T/whole/hyperparameters.json" >/dev/null &&
  pass "  ... hyperparameters.json saves the threads the run used" ||
  fail "hyperparameters.json: $(head -c 400 "$T/whole/hyperparameters.json")"
[[ -f $T/whole/checkpoint-3/trainer_state.json ]] && pass "  ... the run is where the file says" || fail "no $T/whole/checkpoint-3"
expect_exit 0 "a run's own hyperparameters.json as --hyperparameters, --output_dir given as a flag" -- \
  "$EM_BIN/em-train" --hyperparameters "$T/whole/hyperparameters.json" --algo classification --data "$data" \
  --model_config "$cfg" --output_dir "$T/again" --num_workers 1 -q
jq -e '.threads == 1' "$T/again/hyperparameters.json" >/dev/null && [[ -d $T/again/model ]] &&
  pass "  ... its threads taken, the flag's output_dir used" || fail "again: $(jq -c '{threads}' "$T/again/hyperparameters.json")"
# Resumed without --threads (this machine's default would be every CPU): the checkpoint's 1 thread applies.
expect_exit 0 "--resume_from_checkpoint without --threads" -- "$EM_BIN/em-train" --algo classification --data "$data" \
  --model_config "$cfg" --output_dir "$T/whole" --resume_from_checkpoint "$T/whole/checkpoint-3" --num_workers 1 \
  --per_device_train_batch_size 4 --num_train_epochs 1 --learning_rate 1e-3 --save_steps 3
expect_stderr "--threads 1: the checkpoint's" "  ... takes the checkpoint's threads and says so"
jq -e '.threads == 1' "$T/whole/hyperparameters.json" >/dev/null && pass "  ... and runs with them" ||
  fail "resumed threads: $(jq -c '{threads}' "$T/whole/hyperparameters.json")"
echo '{"threads": -2}' >"$T/bad.json"
expect_exit 2 "threads -2 in the file" -- "$EM_BIN/em-train" "${base[@]}" --output_dir "$T/refused" --hyperparameters "$T/bad.json"
expect_stderr '"threads": expected an integer in \[0, 4096\], got -2' "  ... names the field and the range"
expect_exit 2 "no --data anywhere" -- "$EM_BIN/em-train" --algo classification --output_dir "$T/refused"
expect_stderr '--data is required \(on the command line, or "data" in a --hyperparameters file\)' "  ... says where it may come from"
finish
