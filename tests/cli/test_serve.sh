#!/usr/bin/env bash
# em-serve on a tiny trained model: answers equal em-predict's bytes (alone and batched under concurrency), every
# malformed request gets its status and a JSON error, a 100 MB body is refused (413) without the server growing,
# a client stalled mid-body does not block /health, and SIGTERM lets in-flight requests finish, then exits 0.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"
[[ -x $EM_BIN/em-serve && -x $EM_BIN/em-train ]] || skip "em-serve or em-train is not built"

train_tiny_classifier 20 10
mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 2)
"$EM_BIN/em-b64" "${imgs[0]}" >"$T/one.json"
"$EM_BIN/em-b64" "${imgs[0]}" "${imgs[1]}" >"$T/two.json"
"$EM_BIN/em-predict" --model "$model" --threads 1 <"$T/one.json" >"$T/one.expected"
"$EM_BIN/em-predict" --model "$model" --threads 1 <"$T/two.json" >"$T/two.expected"

# post FILE [curl args]: POST a body file to /inference; the body lands in $T/body, the status in $status.
post() {
  local file=$1; shift
  status=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary @"$file" "$@" "$url/inference")
}
# same_answers EXPECTED FILE...: prints "EXACT CLOSE": how many files equal EXPECTED byte for byte, and how many
# give the same labels in the same order with scores within 1e-6 (batched forward passes may round the last bits
# differently: oneDNN's convolutions are not batch-invariant; docs/em-serve.md gives the measurements).
same_answers() {
  python3 - "$@" <<'PY'
import json, sys
want_bytes = open(sys.argv[1], "rb").read(); want = json.loads(want_bytes)
exact = close = 0
for path in sys.argv[2:]:
    got_bytes = open(path, "rb").read()
    exact += got_bytes == want_bytes
    try:
        got = json.loads(got_bytes)
    except ValueError:
        continue
    close += [g["label"] for g in got] == [w["label"] for w in want] and all(
        abs(g["score"] - w["score"]) <= 1e-6 for g, w in zip(got, want))
print(exact, close)
PY
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

start_server main --max_body_bytes 8000000 --max_batch_delay_ms 20 --read_timeout 2
pass "em-serve prints the chosen port ($port)"

# 1. The same bytes as em-predict, one image and two.
post "$T/one.json"
[[ $status == 200 ]] && cmp -s "$T/body" "$T/one.expected" && pass "one image: 200 and em-predict's exact bytes" ||
  fail "one image: status $status, body $(head -c 300 "$T/body") vs $(cat "$T/one.expected")"
post "$T/two.json"
[[ $status == 200 ]] && cmp -s "$T/body" "$T/two.expected" && pass "two images: em-predict's exact bytes" ||
  fail "two images: status $status, body $(head -c 300 "$T/body")"
ctype=$(curl -s -o /dev/null -w '%{content_type}' --data-binary @"$T/one.json" "$url/inference")
[[ $ctype == application/json* ]] && pass "Content-Type is application/json" || fail "Content-Type: $ctype"
"$EM_BIN/em-b64" "${imgs[0]}" 2>/dev/null | curl -s --data-binary @- "$url/inference" >"$T/piped"
cmp -s "$T/piped" "$T/one.expected" && pass "em-b64 | curl --data-binary @- works" || fail "piped request: $(head -c 300 "$T/piped")"

# 2. /health.
status=$(curl -s -o "$T/body" -w '%{http_code}' "$url/health")
[[ $status == 200 ]] && jq -e --arg m "$model" '.status == "ok" and .algo == "classification" and .model == $m' "$T/body" >/dev/null &&
  pass "GET /health: 200 with status, model, algo" || fail "health: $status $(cat "$T/body")"

# 3. Every malformed request: its status and a JSON error naming the problem.
check_error() {  # WANT_STATUS ERROR_REGEX DESCRIPTION
  if [[ $status == "$1" ]] && jq -e --arg re "$2" '.error | test($re)' "$T/body" >/dev/null 2>&1; then pass "$3: $1 + JSON error"
  else fail "$3: status $status, body $(head -c 300 "$T/body") (wanted $1, /$2/)"; fi
}
printf 'not json' >"$T/bad"; post "$T/bad"; check_error 400 "invalid JSON" "malformed JSON"
check_error 400 "must be the request JSON .*em-b64" "  ... saying what the body must be"
post "${imgs[0]}"; check_error 400 "the body is a PNG image, not the request JSON; send .*em-b64" "a raw PNG posted as the body"
grep -q 'POST /inference 400 .* ms .*: request: the body is a PNG image' "$T/main.err" &&
  pass "the access log carries a 400's error message" || fail "access log: $(grep 'POST /inference 400' "$T/main.err" | tail -n 2)"
printf '{}' >"$T/bad"; post "$T/bad"; check_error 400 'missing field "instances"' "missing instances"
printf '{"instances": 3}' >"$T/bad"; post "$T/bad"; check_error 400 "must be an array" "instances not a list"
printf '{"instances": []}' >"$T/bad"; post "$T/bad"; check_error 400 "empty" "no instances"
printf '{"instances": [{}]}' >"$T/bad"; post "$T/bad"; check_error 400 'instances\[0\]: missing field "data"' "missing data"
printf '{"instances": [{"data": "!!not base64!!"}]}' >"$T/bad"; post "$T/bad"; check_error 400 'instances\[0\].data: invalid base64' "bad base64"
printf '{"instances": [{"data": "aGVsbG8gd29ybGQ="}]}' >"$T/bad"; post "$T/bad"; check_error 400 'instances\[0\]: not an image' "undecodable image"
python3 - "$T/two.json" "$T/bad" <<'PY'
import json, sys
req = json.load(open(sys.argv[1])); req["instances"][1]["data"] = req["instances"][1]["data"][:200]
json.dump(req, open(sys.argv[2], "w"))
PY
post "$T/bad"; check_error 400 'instances\[1\]: not an image \(truncated' "truncated second image"
status=$(curl -s -o "$T/body" -w '%{http_code}' "$url/nope"); check_error 404 "no such endpoint" "unknown path"
status=$(curl -s -o "$T/body" -w '%{http_code}' -D "$T/headers" "$url/inference"); check_error 405 "method not allowed" "GET /inference"
grep -qi '^Allow: POST' "$T/headers" && pass "405 names the allowed method (Allow: POST)" || fail "405 headers: $(cat "$T/headers")"
status=$(curl -s -o "$T/body" -w '%{http_code}' -D "$T/headers" --data-binary @"$T/one.json" "$url/health"); check_error 405 "method not allowed" "POST /health"
grep -qi '^Allow: GET, HEAD' "$T/headers" && pass "Allow: GET, HEAD on /health" || fail "405 headers: $(cat "$T/headers")"
status=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$url/inference" -H 'Content-Length:'); check_error 411 "Content-Length" "POST without a length"
python3 - "$port" >"$T/body" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HELLO THERE\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode()); sys.stdout.write(body.decode())
PY
status=$(head -n 1 "$T/body"); sed -i 1d "$T/body"; check_error 400 "malformed HTTP request" "garbage request line"

# 4. 100 MB bodies: refused from Content-Length (with and without Expect: 100-continue) or while reading a chunked
#    body, without the server growing.
head -c 100000000 /dev/zero >"$T/big"
rss0=$(rss_kb "$pid")
status=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -T "$T/big" "$url/inference"); check_error 413 "over the limit" "100 MB body (Expect: 100-continue)"
status=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -T "$T/big" -H 'Expect:' "$url/inference"); check_error 413 "over the limit" "100 MB body sent at once"
status=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -T "$T/big" -H 'Expect:' -H 'Transfer-Encoding: chunked' "$url/inference"); check_error 413 "over the limit" "100 MB chunked body"
hwm=$(hwm_kb "$pid")
(( hwm - rss0 < 40000 )) && pass "the server did not grow with 100 MB bodies (peak +$(( (hwm - rss0) / 1024 )) MiB)" ||
  fail "server peak grew by $(( (hwm - rss0) / 1024 )) MiB"
rm -f "$T/big"

# 5. Many concurrent connections (more than --http_threads' 32): all answered, all with em-predict's bytes, batched.
before=$(curl -s "$url/health" | jq .stats.batches)
clients=()
for i in $(seq 1 48); do
  curl -s -o "$T/c$i" -w '%{http_code}\n' --data-binary @"$T/one.json" "$url/inference" >"$T/s$i" &
  clients+=($!)
done
wait "${clients[@]}" || true
statuses=$(cat "$T"/s{1..48} | sort | uniq -c | xargs)
[[ $statuses == "48 200" ]] && pass "48 concurrent requests: all 200" || fail "48 concurrent requests: statuses $statuses"
read -r exact close < <(same_answers "$T/one.expected" "$T"/c{1..48})
[[ $close == 48 ]] && pass "48 concurrent requests: em-predict's answer ($exact of 48 byte-identical)" ||
  fail "48 concurrent requests: only $close answers agree with em-predict's: $(head -c 300 "$T/c1")"
stats=$(curl -s "$url/health")
batches=$(( $(jq .stats.batches <<<"$stats") - before ))
(( batches < 48 )) && pass "concurrent requests were batched (48 images in $batches forward passes)" ||
  fail "no batching: $batches forward passes for 48 images"

# 6. A client stalls mid-body: /health keeps answering; after --read_timeout the stalled request gets 400.
python3 - "$port" >"$T/stall" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /inference HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b'{"instances": [' + b" " * 1000)
s.settimeout(10)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
except OSError:
    pass
print(data.split(b" ")[1].decode() if data else "none")
PY
stall_pid=$!
sleep 0.5
t0=$(date +%s%N)
status=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 5 "$url/health")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $status == 200 ]] && (( ms < 1500 )) && pass "/health answers in $ms ms while a client stalls mid-body" || fail "/health during a stall: $status after $ms ms"
post "$T/one.json"
[[ $status == 200 ]] && cmp -s "$T/body" "$T/one.expected" && pass "/inference still answers during the stall" || fail "inference during stall: $status"
wait "$stall_pid" || true
[[ $(cat "$T/stall") == 400 ]] && pass "the stalled request is answered 400 after --read_timeout" || fail "stalled client got: $(cat "$T/stall")"
kill -0 "$pid" 2>/dev/null && pass "the server is still running after all that" || fail "the server died"

# 7. Access log: one line per request with method, path, status and milliseconds.
grep -Eq 'em-serve: POST /inference 200 [0-9.]+ ms' "$log" && grep -Eq 'em-serve: GET /nope 404 [0-9.]+ ms' "$log" &&
  pass "access log lines: method, path, status, ms" || fail "access log: $(grep -m3 ' ms' "$log")"

# 8. SIGTERM: stop accepting, finish in-flight requests, exit 0.
kill -TERM "$pid"; set +e; wait "$pid"; rc=$?; set -e
[[ $rc == 0 ]] && pass "SIGTERM on an idle server: exit 0" || fail "SIGTERM exit $rc: $(tail -3 "$log")"
start_server drain --max_batch_delay_ms 1500 --max_batch_size 64
clients=()
for i in 1 2 3 4; do
  curl -s -o "$T/d$i" -w '%{http_code}\n' --data-binary @"$T/one.json" "$url/inference" >"$T/ds$i" &
  clients+=($!)
done
sleep 0.7  # all four are read and waiting in the batcher (1.5 s delay)
kill -TERM "$pid"; set +e; wait "$pid"; rc=$?; set -e
wait "${clients[@]}" || true
statuses=$(cat "$T"/ds{1..4} | sort | uniq -c | xargs)
read -r exact close < <(same_answers "$T/one.expected" "$T"/d{1..4})
[[ $statuses == "4 200" && $close == 4 ]] && pass "SIGTERM: the 4 in-flight requests got their answers" ||
  fail "SIGTERM: in-flight statuses $statuses, $close of 4 answers right"
[[ $rc == 0 ]] && pass "SIGTERM with requests in flight: exit 0" || fail "SIGTERM exit $rc: $(tail -3 "$log")"
curl -s -o /dev/null --max-time 2 "$url/health" && fail "still answering after exit" || pass "the port is closed after exit"

# 9. --max_batch_size 1: every single-image request gets em-predict's exact bytes, also under concurrency.
start_server exact --max_batch_size 1
clients=()
for i in $(seq 1 16); do
  curl -s -o "$T/e$i" --data-binary @"$T/one.json" "$url/inference" &
  clients+=($!)
done
wait "${clients[@]}" || true
read -r exact close < <(same_answers "$T/one.expected" "$T"/e{1..16})
[[ $exact == 16 ]] && pass "--max_batch_size 1: 16 concurrent answers byte-identical to em-predict's" ||
  fail "--max_batch_size 1: only $exact of 16 answers byte-identical"
kill -TERM "$pid"; wait "$pid" || true

expect_exit 2 "--max_batch_size 0 is a usage error" -- "$EM_BIN/em-serve" --model "$model" --max_batch_size 0
expect_stderr "max_batch_size" "the message names the flag"
# --batch_size is the canonical name (as in em-predict and em-eval); --max_batch_size, its old name, sets the same value.
for flag in --batch_size --max_batch_size; do
  expect_exit 0 "em-serve --measure_ceiling $flag 2" -- "$EM_BIN/em-serve" --model "$model" --threads 1 -q \
    --measure_ceiling "${imgs[0]}" --ceiling_seconds 0.05 "$flag" 2
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit([b["batch_size"] for b in r["batch_sizes"]] != [1, 2])' \
    "$T/out" && pass "$flag 2: batch sizes 1, 2 measured" || fail "$flag 2: $(head -c 300 "$T/out")"
done
expect_exit 2 "--batch_size 0 is a usage error" -- "$EM_BIN/em-serve" --model "$model" --batch_size 0
expect_stderr "--batch_size" "the message names the flag"
expect_exit 1 "a missing model folder fails" -- "$EM_BIN/em-serve" --model "$T/nothing" --port 0
finish
