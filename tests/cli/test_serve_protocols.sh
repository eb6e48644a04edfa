#!/usr/bin/env bash
# em-serve as operators run it (issue 16): KServe V1 and Open Inference Protocol V2 routes beside POST /inference,
# two models in one process, per-request parameters (also on em-predict's stdin) that still share forward passes,
# /metrics read by Prometheus' own parser (python3-prometheus-client), X-Request-Id, JSON access logs, liveness
# before readiness, a full queue answered 503 + Retry-After at once and a deadline answered 504.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (scripts/setup.sh installs it)"
command -v jq >/dev/null || skip "jq is not installed (scripts/setup.sh installs it)"
/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null ||
  skip "Debian's python3-prometheus-client is not installed (scripts/setup.sh installs it)"
[[ -x $EM_BIN/em-serve && -x $EM_BIN/em-train ]] || skip "em-serve or em-train is not built"

train_tiny_classifier 20 10
cp -r "$model" "$T/second"
mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 2)
"$EM_BIN/em-b64" "${imgs[0]}" >"$T/one.json"
"$EM_BIN/em-b64" "${imgs[0]}" "${imgs[1]}" >"$T/two.json"
"$EM_BIN/em-predict" --model "$model" --threads 1 <"$T/two.json" >"$T/two.expected"
# with_parameters FILE JSON: the request FILE with "parameters" set.
with_parameters() { jq -c --argjson p "$2" '. + {parameters: $p}' "$1"; }
with_parameters "$T/one.json" '{"top_k": 2}' >"$T/top2.json"
with_parameters "$T/one.json" '{"top_k": 7}' >"$T/top7.json"

# get PATH / post PATH FILE [curl args]: status in $status, body in $T/body, headers in $T/headers.
get() { status=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' "$url$1"); }
post() {
  local path=$1 file=$2; shift 2
  status=$(curl -s -D "$T/headers" -o "$T/body" -w '%{http_code}' --data-binary @"$file" "$@" "$url$path")
}
expect() {  # expect STATUS DESCRIPTION: the last request's status
  [[ $status == "$1" ]] && pass "$2 ($status)" || fail "$2: status $status, body $(head -c 300 "$T/body")"
}

# 1. Liveness before readiness: the port answers while the models load (a test seam stretches the load).
EM_TEST_SERVE_LOAD_DELAY_MS=1500 "$EM_BIN/em-serve" --model "$model" --model second="$T/second" --port 0 \
  --threads 1 --max_batch_delay_ms 300 --log_format json 2>"$T/serve.err" &
pid=$!
for _ in $(seq 1 200); do
  port=$(sed -n 's|.*bound http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$T/serve.err" 2>/dev/null | head -n 1 || true)
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || { fail "em-serve did not bind: $(tail -3 "$T/serve.err")"; finish; }
url=http://127.0.0.1:$port
get /v2/health/live; expect 200 "live while loading"
get /v2/health/ready; expect 503 "not ready while loading"
grep -qi '^Retry-After: 5' "$T/headers" && pass "not ready carries Retry-After" || fail "headers: $(cat "$T/headers")"
post /inference "$T/one.json"; expect 503 "a prediction while loading"
grep -q 'still loading' "$T/body" && pass "the 503 says the model is loading" || fail "body: $(cat "$T/body")"
for _ in $(seq 1 200); do grep -q 'listening on' "$T/serve.err" && break; sleep 0.05; done
get /v2/health/ready; expect 200 "ready once 'listening on' is logged"
jq -e '.ready == true' "$T/body" >/dev/null && pass "ready body" || fail "ready body: $(cat "$T/body")"

# 2. Routes.
get /v1/models; expect 200 "GET /v1/models"
jq -e '.models == ["model", "second"]' "$T/body" >/dev/null && pass "both models listed, a bare DIR named after its folder" ||
  fail "models: $(cat "$T/body")"
get /v1/models/second; expect 200 "V1 model readiness"
jq -e '.name == "second" and .ready == true' "$T/body" >/dev/null && pass "V1 readiness body" || fail "$(cat "$T/body")"
get /v2/models/second/ready; expect 200 "V2 model readiness"
get /v2/models/model; expect 200 "V2 model metadata"
jq -e '.name == "model" and .platform == "emkit_libtorch" and (.inputs | length) == 1 and (.outputs | length) == 1' \
  "$T/body" >/dev/null && pass "V2 metadata body" || fail "metadata: $(cat "$T/body")"
get /v2; expect 200 "V2 server metadata"
get /v1/models/nope; expect 404 "an unknown model"
grep -q 'no model named \\"nope\\" (models: model, second)' "$T/body" && pass "the 404 lists the models" || fail "$(cat "$T/body")"
post /v1/models/nope:predict "$T/one.json"; expect 404 "predict on an unknown model"
get /v1/models/second:predict; expect 405 "GET on a predict route"

# 3. KServe V1 predict = em-predict's answers, one list per instance; the second model answers alike.
post /inference "$T/two.json"; expect 200 "POST /inference (the default model)"
cmp -s "$T/body" "$T/two.expected" && pass "/inference: em-predict's bytes" || fail "/inference: $(head -c 200 "$T/body")"
for name in model second; do
  post "/v1/models/$name:predict" "$T/two.json"; expect 200 "POST /v1/models/$name:predict"
  jq -c '.predictions' "$T/body" >"$T/v1"
  jq -c . "$T/two.expected" >"$T/v1.expected"
  cmp -s "$T/v1" "$T/v1.expected" && pass "$name: predictions = em-predict's list of lists" ||
    fail "$name: $(head -c 200 "$T/v1") vs $(head -c 200 "$T/v1.expected")"
done
post /v1/models/model:predict "$T/one.json"
jq -e '.predictions | length == 1' "$T/body" >/dev/null && pass "one instance: a list of one list" || fail "$(head -c 200 "$T/body")"

# 4. Parameters: per request, the same on em-predict's stdin, refused with names when wrong; two requests with
#    different top_k share one forward pass (the batch waits 300 ms for company).
post /inference "$T/top2.json"; expect 200 "top_k 2"
jq -e 'length == 2' "$T/body" >/dev/null && pass "top_k 2 gives 2 labels" || fail "$(cat "$T/body")"
"$EM_BIN/em-predict" --model "$model" --threads 1 <"$T/top2.json" >"$T/top2.expected"
cmp -s "$T/body" "$T/top2.expected" && pass "em-predict honours the request's parameters: the same bytes" ||
  fail "em-predict: $(cat "$T/top2.expected") vs $(cat "$T/body")"
curl -s -o /dev/null "$url/metrics"  # (nothing; a scrape before the batch test must not disturb it)
passes_before=$(curl -s "$url/metrics" | sed -n 's/^emkit_forward_passes_total{model="model"} //p')
curl -s --data-binary @"$T/top2.json" "$url/inference" >"$T/a" &
a=$!
curl -s --data-binary @"$T/top7.json" "$url/inference" >"$T/b"
wait $a
passes_after=$(curl -s "$url/metrics" | sed -n 's/^emkit_forward_passes_total{model="model"} //p')
jq -e 'length == 2' "$T/a" >/dev/null && jq -e 'length == 7' "$T/b" >/dev/null &&
  pass "concurrent requests keep their own top_k" || fail "a: $(cat "$T/a"); b: $(cat "$T/b")"
[[ $((passes_after - passes_before)) == 1 ]] && pass "and share one forward pass" ||
  fail "forward passes: $passes_before -> $passes_after"
with_parameters "$T/one.json" '{"threshold": 0.5}' >"$T/bad1.json"
post /inference "$T/bad1.json"; expect 400 "threshold on a classification model"
grep -q 'parameters.threshold: only detection models' "$T/body" && pass "named" || fail "$(cat "$T/body")"
with_parameters "$T/one.json" '{"top_k": -3, "colour": 1}' >"$T/bad2.json"
post /v1/models/second:predict "$T/bad2.json"; expect 400 "unknown and out-of-range parameters"
grep -q 'parameters.top_k -3' "$T/body" && grep -q 'parameters.colour: unknown' "$T/body" && pass "both named" ||
  fail "$(cat "$T/body")"
expect_exit 1 "em-predict refuses the same request" -- "$EM_BIN/em-predict" --model "$model" --threads 1 --input "$T/bad2.json"
expect_stderr 'parameters.colour: unknown' "em-predict names the unknown parameter"

# 5. X-Request-Id: echoed, made when absent, in the JSON access log; every stderr line is a JSON object.
post /inference "$T/one.json" -H 'X-Request-Id: trace-42'
grep -qi '^X-Request-Id: trace-42' "$T/headers" && pass "X-Request-Id echoed" || fail "headers: $(cat "$T/headers")"
post /inference "$T/one.json" -H 'X-Request-Id: once' -H 'Expect: 100-continue'
[[ $status == 200 && $(grep -ci '^X-Request-Id:' "$T/headers") == 1 ]] &&
  pass "one X-Request-Id with Expect: 100-continue (pre-routing runs twice)" || fail "headers: $(cat "$T/headers")"
get /v2/health/live
made=$(sed -n 's/^[Xx]-[Rr]equest-[Ii]d: \([0-9a-f]*\)\r$/\1/p' "$T/headers")
[[ ${#made} == 32 ]] && pass "an X-Request-Id is made when absent ($made)" || fail "headers: $(cat "$T/headers")"
sleep 0.2
jq -e -s 'map(select(.request_id == "trace-42" and .path == "/inference" and .status == 200 and .model == "model" and .images == 1)) | length == 1' \
  "$T/serve.err" >/dev/null && pass "the JSON access log has the request's id, status, model and images" ||
  fail "access log: $(grep trace-42 "$T/serve.err" | head -n 2)"
if jq -e -s 'all(has("time") and has("level") and has("program"))' "$T/serve.err" >/dev/null 2>&1; then
  pass "--log_format json: every stderr line is a JSON object"
else
  fail "non-JSON lines: $(grep -v '^{' "$T/serve.err" | head -n 3)"
fi

# 6. /metrics through Prometheus' parser, and its numbers.
curl -s "$url/metrics" -o "$T/metrics" -D "$T/headers"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers" && pass "metrics content type" || fail "$(cat "$T/headers")"
if /usr/bin/python3 - "$T/metrics" >"$T/metrics.check" 2>&1 <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
problems = []
def samples(name, suffix="", **labels):
    return [s for s in families[name].samples
            if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items())]
for name, kind in [("emkit_requests", "counter"), ("emkit_request_duration_seconds", "histogram"),
                   ("emkit_batch_size", "histogram"), ("emkit_queue_images", "gauge"), ("emkit_images", "counter"),
                   ("emkit_images_per_second", "gauge"), ("emkit_model_load_seconds", "gauge"),
                   ("emkit_model_ready", "gauge"), ("process_resident_memory_bytes", "gauge")]:
    if name not in families or families[name].type != kind:
        problems.append(f"{name}: missing or not a {kind}")
if not problems:
    v1 = samples("emkit_requests", "_total", route="/v1/models/{name}:predict", model="second", code="200")
    if not v1 or v1[0].value != 1: problems.append(f"V1 predicts of 'second': {v1}")
    bad = samples("emkit_requests", "_total", route="/v1/models/{name}:predict", model="second", code="400")
    if not bad or bad[0].value != 1: problems.append(f"the 400 of 'second': {bad}")
    for model in ("model", "second"):
        buckets = samples("emkit_request_duration_seconds", "_bucket", model=model)
        counts = [b.value for b in buckets]
        inf = [b.value for b in buckets if b.labels["le"] == "+Inf"]
        total = samples("emkit_request_duration_seconds", "_count", model=model)[0].value
        if counts != sorted(counts) or inf != [total] or total < 2:
            problems.append(f"latency histogram of {model}: {counts}, count {total}")
        if samples("emkit_model_ready", model=model)[0].value != 1: problems.append(f"{model} not ready")
    sizes = samples("emkit_batch_size", "_bucket", model="model")
    le1 = [b.value for b in sizes if b.labels["le"] == "1"][0]
    le2 = [b.value for b in sizes if b.labels["le"] == "2"][0]
    if le2 - le1 < 2: problems.append(f"no passes of 2 images for 'model': le1 {le1}, le2 {le2}")
    images = samples("emkit_images", "_total", model="second")[0].value
    if images != 2: problems.append(f"images of 'second': {images}")
    if samples("process_resident_memory_bytes")[0].value < 1e6: problems.append("RSS")
print("\n".join(problems) or "ok")
sys.exit(1 if problems else 0)
PY
then pass "/metrics parses with prometheus_client; counts, histograms and readiness agree with what was sent"
else fail "/metrics: $(cat "$T/metrics.check")"; fi
kill -TERM $pid; wait $pid && pass "SIGTERM: exit 0" || fail "exit $? after SIGTERM"

# 7. Overload: a queue of 1 image with the model slow (a batch waits 400 ms for company) sheds at once; a
#    deadline shorter than the wait is 504.
start_server overload --max_queue_images 1 --max_batch_delay_ms 400 --batch_size 8
curl -s -o "$T/first" --data-binary @"$T/one.json" "$url/inference" &
first=$!
sleep 0.1
post /inference "$T/one.json"; expect 503 "a second request past --max_queue_images 1"
grep -qi '^Retry-After: 1' "$T/headers" && pass "with Retry-After: 1" || fail "headers: $(cat "$T/headers")"
grep -q -- '--max_queue_images 1' "$T/body" && pass "the 503 names --max_queue_images" || fail "$(cat "$T/body")"
wait $first
jq -e 'length > 0' "$T/first" >/dev/null && pass "the queued request is still answered" || fail "$(cat "$T/first")"
kill -TERM $pid; wait $pid || true
start_server deadline --request_timeout_ms 100 --max_batch_delay_ms 1000 --batch_size 8
post /inference "$T/one.json"; expect 504 "a request that waits past --request_timeout_ms 100"
grep -q -- '--request_timeout_ms' "$T/body" && pass "the 504 names --request_timeout_ms" || fail "$(cat "$T/body")"
get /metrics
grep -q '^emkit_requests_total{route="/inference",model="model",code="504"} 1' "$T/body" &&
  pass "the 504 is counted" || fail "$(grep requests_total "$T/body")"
kill -TERM $pid; wait $pid || true

# 8. Usage errors: two models of one name, a bad name, a bad --log_format.
expect_exit 2 "two models named alike" -- "$EM_BIN/em-serve" --model "$model" --model "$T/run/model" --port 0
expect_stderr 'two models named "model"' "the clash is named"
expect_exit 2 "a bad model name" -- "$EM_BIN/em-serve" --model "a b=$model" --port 0
expect_stderr 'model name "a b"' "the bad name is named"
expect_exit 124 "em-serve with too few --http_threads for its queue still serves (stopped by timeout)" -- \
  timeout 3 "$EM_BIN/em-serve" --model "$model" --port 0 --threads 1 --http_threads 8
expect_stderr 'raise --http_threads above 48' "and warns that 503s would wait for a thread (32 queued + 16 in a batch)"
expect_exit 2 "--log_format xml" -- "$EM_BIN/em-serve" --model "$model" --log_format xml
finish
