#!/usr/bin/env bash
# Data-parallel faults and stops on loopback (docs/distributed.md): a rank killed mid-run makes the other exit non-zero
# naming it, well within --ddp_timeout; the launcher exits with the killed worker's status; SIGINT to the launcher
# checkpoints once and stops every rank with 130; checkpoints resume with another number of processes (2 -> 1,
# 1 -> 2); rendezvous errors are one line.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || skip "jq is not installed"
[[ -x $EM_BIN/em-train ]] || skip "em-train is not built"

data=$T/fashion
make_fashion_dataset "$data" 40 8
write_tiny_resnet_config "$T/tiny.json"
common=(--algo classification --data "$data" --model_config "$T/tiny.json" --threads 1 --num_workers 1
        --learning_rate 1e-3 --logging_steps 1 --save_steps 5 --eval_strategy no)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # PATH SECONDS: until PATH exists
  local i
  for ((i = 0; i < $2 * 20; ++i)); do [[ -e $1 ]] && return 0; sleep 0.05; done
  return 1
}

# 1. SIGKILL of rank 1 (SLURM-style variables, so each rank is our child): rank 0 names it and exits 1.
port=$(free_port)
for r in 0 1; do
  SLURM_PROCID=$r SLURM_NTASKS=2 SLURM_LOCALID=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 --num_train_epochs 400 --ddp_timeout 30 \
    --output_dir "$T/k" >/dev/null 2>"$T/k$r.err" &
  pids[$r]=$!
done
if wait_for "$T/k/checkpoint-5/trainer_state.json" 120; then
  kill -9 "${pids[1]}"; t0=$(date +%s.%N)
  rc=0; wait "${pids[0]}" || rc=$?
  took=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0")
  wait "${pids[1]}" 2>/dev/null || true
  [[ $rc -ne 0 ]] && pass "rank 0 exits $rc after rank 1 was killed, in $took s (--ddp_timeout 30)" || fail "rank 0 exit $rc"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 30 else 1)' "$took" && pass "  ... within --ddp_timeout" ||
    fail "rank 0 took $took s"
  grep -Eq 'lost rank 1 \(pid [0-9]+ on ' "$T/k0.err" && pass "  ... naming the lost rank" || fail "rank 0 said: $(tail -3 "$T/k0.err")"
else
  fail "no checkpoint-5: $(tail -3 "$T/k0.err")"; kill -9 "${pids[@]}" 2>/dev/null || true
fi
# The last checkpoint is complete: it resumes with 1 process x 8 (the same global batch), to a shorter end.
last=$(ls -d "$T/k"/checkpoint-* | sort -t- -k2 -n | tail -n 1)
step=${last##*-}
expect_exit 0 "the killed run's last checkpoint resumes in 1 process (2 -> 1)" -- "$EM_BIN/em-train" "${common[@]}" \
  --per_device_train_batch_size 8 --num_train_epochs $(( step / 5 + 2 )) --output_dir "$T/k" --resume_from_checkpoint "$last"
expect_stderr "resuming from .*checkpoint-$step \(step $step of $(( step + 10 ))\)" "  ... at step $step of the same global batch"
jq -e ".global_step == $(( step + 10 ))" "$T/out" >/dev/null && pass "  ... and trains to the end" || fail "resumed: $(cat "$T/out")"

# 2. The launcher: a worker killed -> exit 128 + 9, naming it.
"$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 --num_train_epochs 400 --ddp_timeout 30 \
  --nproc_per_node 2 --output_dir "$T/l" >/dev/null 2>"$T/l.err" &
launcher=$!
if wait_for "$T/l/checkpoint-5/trainer_state.json" 120; then
  worker=$(pgrep -P "$launcher" | sort -n | tail -n 1)  # rank 1: started second
  kill -9 "$worker"
  rc=0; wait "$launcher" || rc=$?
  [[ $rc -eq 137 ]] && pass "the launcher exits 137 (rank 1 was killed by signal 9)" || fail "launcher exit $rc: $(tail -3 "$T/l.err")"
  grep -q 'worker rank 1 (pid [0-9]*) was killed by signal 9' "$T/l.err" && pass "  ... and says which worker" ||
    fail "launcher said: $(tail -3 "$T/l.err")"
else
  fail "no checkpoint-5 in the launcher's run: $(tail -3 "$T/l.err")"; kill -9 "$launcher" 2>/dev/null || true
fi

# 3. SIGINT to the launcher: one checkpoint at the step where every rank stopped, exit 130; resume 2 -> 1 exactly
#    where it stopped, then a 1-process checkpoint resumed by 2 processes (1 -> 2).
"$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 --num_train_epochs 400 --nproc_per_node 2 \
  --output_dir "$T/s" >/dev/null 2>"$T/s.err" &
launcher=$!
if wait_for "$T/s/checkpoint-5/trainer_state.json" 120; then
  kill -INT "$launcher"
  rc=0; wait "$launcher" || rc=$?
  [[ $rc -eq 130 ]] && pass "SIGINT to the launcher: exit 130" || fail "exit $rc: $(tail -3 "$T/s.err")"
  stopped=$(grep -o 'stopped by signal 2 at step [0-9]*' "$T/s.err" | head -n 1 | grep -o '[0-9]*$' || true)
  [[ -n $stopped && -f $T/s/checkpoint-$stopped/trainer_state.json ]] && pass "  ... checkpoint-$stopped written at the stop" ||
    fail "no checkpoint at the stop: $(tail -4 "$T/s.err")"
  [[ $(grep -c 'stopped by signal' "$T/s.err") -eq 1 ]] && pass "  ... rank 0 alone reports it" || fail "$(grep 'stopped' "$T/s.err")"
  expect_exit 0 "resume with 1 process x 8 (2 -> 1)" -- "$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 8 \
    --num_train_epochs $(( stopped / 5 + 2 )) --output_dir "$T/s" --resume_from_checkpoint
  expect_stderr "resuming from .*checkpoint-$stopped" "  ... from the stop's checkpoint"
else
  fail "no checkpoint-5 in the interrupted run: $(tail -3 "$T/s.err")"; kill -9 "$launcher" 2>/dev/null || true
fi
expect_exit 0 "1 process x 4, 10 steps" -- "$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 \
  --num_train_epochs 1 --output_dir "$T/one"
rm -rf "$T/one/model" "$T/one/checkpoint-10"
expect_exit 0 "its checkpoint-5 resumed by 2 processes x 4 (1 -> 2)" -- "$EM_BIN/em-train" "${common[@]}" \
  --per_device_train_batch_size 4 --num_train_epochs 2 --nproc_per_node 2 --output_dir "$T/one" --resume_from_checkpoint
expect_stderr "trained by 1 process x batch 4, this run is 2 processes x batch 4: step 5 \(epoch 0, 20 of its images\) continues as step 2" \
  "  ... at the same sample position (20 images = 2.5 steps of 8; rounded down)"
expect_stderr "4 images of epoch 0 are trained on again" "  ... saying what is seen again"
jq -e '.global_step == 10 and .world_size == 2' "$T/out" >/dev/null && pass "  ... to the end (2 epochs of 5 steps)" ||
  fail "1 -> 2: $(cat "$T/out")"

# 4. Rendezvous errors, one line each, within --ddp_timeout.
port=$(free_port)
python3 -c 'import socket, sys, time; s = socket.socket(); s.bind(("", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$port" &
holder=$!
sleep 0.5
expect_exit 1 "MASTER_PORT in use" -- env WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 --ddp_timeout 5 --output_dir "$T/r1"
expect_stderr "rendezvous: MASTER_PORT $port is already in use" "  ... says the port is in use"
kill "$holder" 2>/dev/null || true
port=$(free_port)
expect_exit 1 "rank 1 with no rank 0 to reach" -- env WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$EM_BIN/em-train" "${common[@]}" --per_device_train_batch_size 4 --ddp_timeout 3 --output_dir "$T/r2"
expect_stderr "could not reach rank 0's store at 127.0.0.1:$port within 3 s" "  ... says whom it could not reach"
[[ $(grep -c 'error' "$T/err") -eq 1 ]] && pass "  ... in one error line" || fail "errors: $(cat "$T/err")"
port=$(free_port)
for r in 0 1; do
  WORLD_SIZE=$(( 2 + r )) RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$EM_BIN/em-train" "${common[@]}" \
    --per_device_train_batch_size 4 --ddp_timeout 10 --output_dir "$T/r3" >/dev/null 2>"$T/w$r.err" &
  pids[$r]=$!
done
rc0=0; rc1=0; wait "${pids[0]}" || rc0=$?; wait "${pids[1]}" || rc1=$?
[[ $rc0 -eq 1 && $rc1 -eq 1 ]] && pass "WORLD_SIZE 2 and 3: both exit 1" || fail "exits $rc0 $rc1"
grep -q 'was started with WORLD_SIZE' "$T/w1.err" && pass "  ... saying the world sizes differ" || fail "rank 1 said: $(cat "$T/w1.err")"
finish
