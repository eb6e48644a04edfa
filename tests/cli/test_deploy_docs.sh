#!/usr/bin/env bash
# docs/deploy.md's examples work against the real em-serve: the em-serve arguments of every block marked
# `<!-- checked: KIND -->` (systemd ExecStart=, the Kubernetes and KServe containers' args:) start a server when a
# tiny trained model stands in for the model folders and port 0 for the port; every probe path, scrape path and
# route the doc names answers 200 (the V1 predict path with a real image from em-b64); the ports, model names and
# paths of the examples agree with each other; SIGTERM stops each server within the stop timeout its example sets.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v jq >/dev/null || skip "jq is not installed"
[[ -x $EM_BIN/em-serve && -x $EM_BIN/em-train && -x $EM_BIN/em-b64 ]] || skip "em-serve, em-train or em-b64 is not built"
doc=$EM_SOURCE/docs/deploy.md
[[ -f $doc ]] || { fail "docs/deploy.md is missing"; finish; }

train_tiny_classifier 20 10
img=$(find "$data/validation" -name '*.png' | sort | sed -n 1p)
"$EM_BIN/em-b64" "$img" >"$T/request.json"

# The doc's checked blocks as JSON ($T/examples.json): per example its em-serve arguments with the model folders
# replaced by copies of $model (under the folder's own basename, so a bare --model DIR keeps its name), --port 0,
# --host 127.0.0.1, --threads 1; the model names, probe paths and stop budget; plus the scrape paths, the route
# table and every disagreement between the blocks ("problems").
python3 - "$doc" "$model" "$T" "$EM_BIN/em-serve" "$(command -v curl)" >"$T/examples.json" <<'PY'
import json, os, re, shlex, shutil, sys

doc_path, model, tmp, em_serve, curl = sys.argv[1:6]
text = open(doc_path, encoding="utf-8").read()
problems, examples = [], []


def blocks(kind):
    """The fenced blocks (or, for routes, the table) right after each `<!-- checked: KIND -->` marker."""
    found = []
    for m in re.finditer(r"<!-- checked: %s -->\n" % re.escape(kind), text):
        rest = text[m.end():]
        if kind == "routes":
            found.append(re.match(r"((?:\|.*\n)+)", rest).group(1) if rest.startswith("|") else "")
            continue
        fence = re.match(r"```[a-z]*\n(.*?)\n```", rest, re.S)
        if fence:
            found.append(fence.group(1))
        else:
            problems.append(f"the <!-- checked: {kind} --> marker is not followed by a fenced block")
    if not found:
        problems.append(f"no block marked <!-- checked: {kind} --> (the test needs it)")
    return found


copies = 0


def substitute(kind, args):
    """em-serve arguments with test values; returns (args, model names, port from the doc)."""
    global copies
    out, names, port, i = [], [], None, 0
    while i < len(args):
        flag, value = args[i], None
        if flag.startswith("--") and "=" in flag:
            flag, value = flag.split("=", 1)
        elif flag.startswith("--") and flag in ("--model", "--port", "--host", "--threads"):
            i += 1
            value = args[i] if i < len(args) else None
        if value is None:
            out.append(flag)
        elif flag == "--model":
            name, folder = value.split("=", 1) if "=" in value else (None, value)  # em-serve's rule: NAME=DIR
            base = os.path.basename(folder.rstrip("/")) or "model"
            names.append(name or base)
            copies += 1
            dest = os.path.join(tmp, "models", str(copies), base)
            shutil.copytree(model, dest)
            out += ["--model", f"{name}={dest}" if name else dest]
        elif flag == "--port":
            port = int(value)
            out += ["--port", "0"]
        elif flag == "--host":
            out += ["--host", "127.0.0.1"]
        elif flag == "--threads":
            out += ["--threads", "1"]
        else:
            out += [flag, value]
        i += 1
    if "$(" in " ".join(args) or "${" in " ".join(args):
        problems.append(f"{kind}: the arguments use a variable; write the values out so they can be checked")
    if not names:
        problems.append(f"{kind}: no --model in the em-serve arguments")
    if port is None:
        problems.append(f"{kind}: no --port in the em-serve arguments (em-serve's default 8080 is implicit)")
    return out, names, port


def seconds(value):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value.strip())
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def flow_list(block, key, kind):
    m = re.search(r"^\s*%s:\s*(\[.*?\])" % key, block, re.M | re.S)
    if not m:
        problems.append(f"{kind}: no `{key}: [...]` list")
        return []
    try:
        return json.loads(m.group(1))
    except ValueError as e:
        problems.append(f"{kind}: `{key}:` is not a JSON-style list of strings ({e})")
        return []


def probes(block):
    """[(probe name, path, port)] of every *Probe: with an httpGet, from the indented lines under it."""
    found, lines = [], block.split("\n")
    for n, line in enumerate(lines):
        m = re.match(r"^(\s*)(livenessProbe|readinessProbe|startupProbe):", line)
        if not m:
            continue
        body = []
        for nxt in lines[n + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= len(m.group(1)):
                break
            body.append(nxt)
        body = "\n".join(body)
        path = re.search(r"path:\s*\"?([^\s,}\"]+)", body)
        port = re.search(r"port:\s*\"?([^\s,}\"]+)", body)
        found.append((m.group(2), path.group(1) if path else None, port.group(1) if port else None))
    return found


def annotation(block, prefix, key):
    m = re.search(r"%s/%s:\s*\"?([^\s\"]+)\"?" % (re.escape(prefix), key), block)
    return m.group(1) if m else None


# Routes table: `METHOD /path` in the first column.
routes = []
for table in blocks("routes"):
    routes += [list(r) for r in re.findall(r"^\|\s*`(GET|POST|HEAD) (/\S*)`\s*\|", table, re.M)]
route_paths = {p for _, p in routes}
if routes and not {"/v2/health/live", "/v2/health/ready", "/metrics", "/v1/models/{name}:predict"} <= route_paths:
    problems.append("the routes table lacks one of /v2/health/live, /v2/health/ready, /metrics, "
                    "/v1/models/{name}:predict")


def check_paths(kind, paths):
    for p in paths:
        if p and p not in route_paths:
            problems.append(f"{kind}: path {p} is not in the routes table")


systemd_port = None
for unit in blocks("systemd"):
    joined = re.sub(r"\\\n\s*", " ", unit)
    keys = {}
    for line in joined.split("\n"):
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            keys.setdefault(m.group(1), []).append(m.group(2))
    if len(keys.get("ExecStart", [])) != 1:
        problems.append("systemd: the unit needs exactly one ExecStart=")
        continue
    argv = shlex.split(keys["ExecStart"][0].lstrip("-@+!:"))
    if os.path.basename(argv[0]) != "em-serve":
        problems.append(f"systemd: ExecStart= runs {argv[0]}, not em-serve")
    args, names, port = substitute("systemd", argv[1:])
    systemd_port = port
    if keys.get("KillSignal", ["SIGTERM"])[-1] not in ("SIGTERM", "TERM", "15"):
        problems.append(f"systemd: KillSignal={keys['KillSignal'][-1]}: em-serve drains on SIGTERM")
    stop = seconds(keys.get("TimeoutStopSec", ["90"])[-1])
    if stop is None:
        problems.append("systemd: TimeoutStopSec= is not a number of seconds")
    if "Restart" not in keys:
        problems.append("systemd: no Restart=")
    if keys.get("User", ["root"])[-1] in ("root", "0"):
        problems.append("systemd: the unit runs as root (User= missing)")
    example = {"kind": "systemd", "args": args, "models": names, "probes": [], "stop_budget_s": stop or 90}
    for post in keys.get("ExecStartPost", []):
        post_argv = shlex.split(post.lstrip("-@+!:"))
        urls = [a for a in post_argv if a.startswith("http://")]
        for u in urls:
            m = re.match(r"http://(127\.0\.0\.1|localhost):(\d+)(/\S*)$", u)
            if not m:
                problems.append(f"systemd: ExecStartPost= URL {u} is not http://127.0.0.1:PORT/PATH")
                continue
            if int(m.group(2)) != port:
                problems.append(f"systemd: ExecStartPost= asks port {m.group(2)}, em-serve listens on {port}")
            example["probes"].append({"name": "ExecStartPost", "path": m.group(3)})
            check_paths("systemd ExecStartPost", [m.group(3)])
        example["start_post"] = [re.sub(r"^(http://[^:/]+):\d+", r"\1:{port}", a) for a in post_argv]
        if os.path.basename(post_argv[0]) == "curl":
            example["start_post"][0] = curl
    # The unit with binaries that exist here, for systemd-analyze verify.
    runnable = re.sub(r"^ExecStart=\S+", "ExecStart=" + em_serve, unit, flags=re.M)
    runnable = re.sub(r"^ExecStartPost=\S*curl", "ExecStartPost=" + curl, runnable, flags=re.M)
    with open(os.path.join(tmp, "em-serve.service"), "w") as f:
        f.write(runnable + "\n")
    example["log_json"] = "--log_format" in argv and argv[argv.index("--log_format") + 1] == "json"
    examples.append(example)

annotated = []  # (path, port) of the pod annotations Prometheus follows
for kind in ("kubernetes", "kserve"):
    for block in blocks(kind):
        command = flow_list(block, "command", kind)
        if command and os.path.basename(command[0]) != "em-serve":
            problems.append(f"{kind}: the container runs {command[0]}, not em-serve")
        argv = flow_list(block, "args", kind)
        if not argv:
            continue
        args, names, port = substitute(kind, argv)
        container_ports = [int(p) for p in re.findall(r"containerPort:\s*(\d+)", block)]
        if port not in container_ports:
            problems.append(f"{kind}: em-serve listens on {port}, the container declares ports {container_ports}")
        example = {"kind": kind, "args": args, "models": names, "probes": [],
                   "log_json": "--log_format" in argv and argv[argv.index("--log_format") + 1] == "json"}
        found = probes(block)
        for name in ("livenessProbe", "readinessProbe"):
            if name not in [p[0] for p in found]:
                problems.append(f"{kind}: no {name}")
        for name, path, probe_port in found:
            if path is None:
                problems.append(f"{kind}: {name} has no httpGet path")
                continue
            if probe_port != str(port):
                problems.append(f"{kind}: {name} probes port {probe_port}, em-serve listens on {port}")
            example["probes"].append({"name": name, "path": path})
        check_paths(kind, [p["path"] for p in example["probes"]])
        grace = re.search(r"terminationGracePeriodSeconds:\s*(\d+)", block)
        pre_stop = re.search(r"preStop:[^\n]*\n\s*sleep:\s*\{\s*seconds:\s*(\d+)", block)
        example["stop_budget_s"] = (int(grace.group(1)) if grace else 30) - (int(pre_stop.group(1)) if pre_stop else 0)
        prefix = "prometheus.io" if kind == "kubernetes" else "prometheus.kserve.io"
        a_path, a_port = annotation(block, prefix, "path"), annotation(block, prefix, "port")
        if a_path or a_port:
            if a_port != str(port):
                problems.append(f"{kind}: {prefix}/port is {a_port}, em-serve listens on {port}")
            annotated.append(a_path or "/metrics")
            check_paths(f"{kind} {prefix}/path", [a_path or "/metrics"])
        else:
            problems.append(f"{kind}: no {prefix}/port and /path annotations for Prometheus")
        if kind == "kserve":
            isvc = re.search(r"^metadata:\n(?:[ \t]+.*\n)*?[ \t]+name:\s*(\S+)", block, re.M)
            if not isvc or isvc.group(1) not in names:
                problems.append(f"kserve: the InferenceService name {isvc and isvc.group(1)} is not the name of a "
                                f"--model ({names}); KServe's gateway calls /v1/models/<that name>:predict")
            if not re.search(r"-\s*name:\s*kserve-container\b", block):
                problems.append("kserve: the predictor container is not named kserve-container")
            if port != 8080:
                problems.append(f"kserve: em-serve listens on {port}; KServe expects 8080")
        examples.append(example)

scrape = []
for block in blocks("prometheus"):
    for path in re.findall(r"^\s*metrics_path:\s*\"?([^\s\"]+)", block, re.M):
        scrape.append(path)
    check_paths("prometheus metrics_path", scrape)
    for targets in re.findall(r"targets:\s*(\[.*?\])", block, re.S):
        for target in json.loads(targets):
            if systemd_port is not None and not target.endswith(f":{systemd_port}"):
                problems.append(f"prometheus: target {target} is not on the systemd unit's port {systemd_port}")
    if annotated and "__meta_kubernetes_pod_annotation_prometheus_io_path" not in block:
        problems.append("prometheus: no job follows the pods' prometheus.io/path annotation")
scrape = sorted(set(scrape + annotated))

# With PyYAML at hand, the YAML blocks must parse, and its view of the containers' args must equal ours.
yaml_checked = False
try:
    import yaml
    yaml_checked = True
    for kind in ("kubernetes", "kserve", "prometheus"):
        for block in blocks(kind):
            try:
                docs = [d for d in yaml.safe_load_all(block) if d]
            except yaml.YAMLError as e:
                problems.append(f"{kind}: not valid YAML: {e}")
                continue

            def containers(node):
                if isinstance(node, dict):
                    if "containers" in node and isinstance(node["containers"], list):
                        yield from node["containers"]
                    for v in node.values():
                        yield from containers(v)
                elif isinstance(node, list):
                    for v in node:
                        yield from containers(v)
            for c in (c for d in docs for c in containers(d)):
                if c.get("args") != flow_list(block, "args", kind):
                    problems.append(f"{kind}: YAML reads the args as {c.get('args')}")
except ImportError:
    pass

json.dump({"problems": sorted(set(problems)), "examples": examples, "scrape": scrape, "routes": routes,
           "yaml_checked": yaml_checked}, sys.stdout, indent=1)
PY

# 1. The examples agree with each other and with the routes table.
mapfile -t problems < <(jq -r '.problems[]' "$T/examples.json")
for p in "${problems[@]}"; do fail "docs/deploy.md: $p"; done
((${#problems[@]} == 0)) && pass "docs/deploy.md: the checked blocks agree (ports, model names, probe and scrape paths in the routes table)"
n=$(jq '.examples | length' "$T/examples.json")
kinds=$(jq -r '[.examples[].kind] | join(", ")' "$T/examples.json")
[[ $kinds == "systemd, kubernetes, kserve" ]] && pass "found the em-serve arguments of $kinds" ||
  fail "expected the systemd, kubernetes and kserve examples, found: $kinds"
jq -e '.yaml_checked' "$T/examples.json" >/dev/null && pass "the YAML blocks parse (PyYAML) and their args are what the test runs" ||
  echo "note: python3-yaml is absent: YAML syntax not checked"

# 2. The systemd unit passes systemd-analyze verify (when systemd-analyze works here at all).
if command -v systemd-analyze >/dev/null && [[ -f $T/em-serve.service ]]; then
  printf '[Service]\nExecStart=/bin/true\n' >"$T/known-good.service"
  if timeout 30 systemd-analyze verify "$T/known-good.service" >/dev/null 2>&1; then
    if timeout 30 systemd-analyze verify "$T/em-serve.service" >"$T/verify" 2>&1 &&
       ! grep -Eqi 'unknown|invalid|failed to parse|ignoring' "$T/verify"; then
      pass "systemd-analyze verify accepts the unit"
    else
      fail "systemd-analyze verify: $(head -c 600 "$T/verify")"
    fi
  else
    echo "note: systemd-analyze verify does not work here: unit not verified"
  fi
fi

# serve KIND ARGS...: em-serve with an example's arguments; sets pid, port, url, log. Returns 1 (after a failure)
# when it exits or does not print its port within 60 s.
serve() {
  local kind=$1; shift
  log=$T/$kind.err
  "$EM_BIN/em-serve" "$@" 2>"$log" &
  pid=$! port=
  for _ in $(seq 1 1200); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" 2>/dev/null | head -n 1 || true)
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -z $port ]]; then
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    local rc=0; wait "$pid" || rc=$?
    fail "$kind: em-serve with the doc's arguments did not start (exit $rc): $(tail -n 3 "$log")"
    return 1
  fi
  url=http://127.0.0.1:$port
}
# get PATH [curl args]: status in $status, body in $T/body, headers in $T/headers.
get() {
  local path=$1; shift
  status=$(curl -s --max-time 30 -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@" "$url$path" || true)
}

"$EM_BIN/em-serve" --help >"$T/help" 2>&1 || true
for ((i = 0; i < n; i++)); do
  ex=$(jq -c ".examples[$i]" "$T/examples.json")
  kind=$(jq -r .kind <<<"$ex")
  mapfile -t args < <(jq -r '.args[]' <<<"$ex")
  mapfile -t models < <(jq -r '.models[]' <<<"$ex")

  # 3. Every flag the example passes is one em-serve knows (a build without issue 16's flags fails here, clearly).
  unknown=()
  for a in "${args[@]}"; do
    [[ $a == --* ]] || continue
    grep -Eq -- "(^|[ ,])${a%%=*}([ ,=]|$)" "$T/help" || unknown+=("${a%%=*}")
  done
  if ((${#unknown[@]})); then
    fail "$kind: docs/deploy.md passes ${unknown[*]}, which 'em-serve --help' does not list"
    continue
  fi
  pass "$kind: every flag of the example is in em-serve --help"

  serve "$kind" "${args[@]}" || continue
  pass "$kind: em-serve starts with the doc's arguments (${args[*]//$T/\$T})"

  # 4. Live as soon as it listens; ready once the models are loaded and warmed up (within 120 s here).
  get /v2/health/live
  [[ $status == 200 ]] && pass "$kind: /v2/health/live answers 200 right after 'listening on'" ||
    fail "$kind: /v2/health/live: $status $(head -c 200 "$T/body")"
  for _ in $(seq 1 600); do
    get /v2/health/ready
    [[ $status == 200 ]] && break
    sleep 0.2
  done
  [[ $status == 200 ]] && jq -e '.ready == true' "$T/body" >/dev/null && pass "$kind: /v2/health/ready turns 200 {\"ready\":true}" ||
    { fail "$kind: never ready: $status $(head -c 200 "$T/body"); log: $(tail -n 3 "$log")"; kill -KILL "$pid"; wait "$pid" || true; continue; }

  # 5. Every probe the example names.
  while IFS=$'\t' read -r name path; do
    get "$path"
    [[ $status == 200 ]] && pass "$kind: $name GET $path answers 200" || fail "$kind: $name GET $path: $status $(head -c 200 "$T/body")"
  done < <(jq -r '.probes[] | [.name, .path] | @tsv' <<<"$ex")

  # 6. The V1 routes for every model of the example, with a real image and a request id.
  get /v1/models
  [[ $status == 200 ]] && jq -e --args '(.models | sort) == ($ARGS.positional | sort)' "${models[@]}" <"$T/body" >/dev/null &&
    pass "$kind: GET /v1/models lists ${models[*]}" || fail "$kind: GET /v1/models: $status $(head -c 200 "$T/body")"
  for m in "${models[@]}"; do
    get "/v1/models/$m"
    [[ $status == 200 ]] && jq -e --arg m "$m" '.name == $m and .ready == true' "$T/body" >/dev/null &&
      pass "$kind: GET /v1/models/$m: ready" || fail "$kind: GET /v1/models/$m: $status $(head -c 200 "$T/body")"
    get "/v1/models/$m:predict" --data-binary @"$T/request.json" -H "Content-Type: application/json" -H "X-Request-Id: deploy-docs-$kind-$m"
    [[ $status == 200 ]] && jq -e '(.predictions | length) == 1 and (.predictions[0] | type) == "array" and (.predictions[0][0].label | type) == "string"' "$T/body" >/dev/null &&
      pass "$kind: POST /v1/models/$m:predict answers {\"predictions\": [[...]]}" ||
      fail "$kind: POST /v1/models/$m:predict: $status $(head -c 300 "$T/body")"
    grep -qi "^X-Request-Id: deploy-docs-$kind-$m"$'\r'"\?$" "$T/headers" && pass "$kind: X-Request-Id is echoed" ||
      fail "$kind: X-Request-Id not echoed: $(tr -d '\r' <"$T/headers" | tr '\n' '|')"
  done

  # 7. The scrape paths (static job and pod annotations): Prometheus text with every model ready.
  while read -r path; do
    get "$path"
    ok=$([[ $status == 200 ]] && grep -Eq '^# TYPE emkit_request_duration_seconds histogram' "$T/body" && echo yes || true)
    for m in "${models[@]}"; do
      grep -Eq "^emkit_model_ready\{([^}]*,)?model=\"$m\"(,[^}]*)?\} 1(\.0)?$" "$T/body" || ok=
    done
    [[ -n $ok ]] && pass "$kind: scrape path $path: 200, emkit_* metrics, emkit_model_ready 1 for ${models[*]}" ||
      fail "$kind: scrape path $path: $status $(grep -E 'emkit_model_ready|^# TYPE emkit_request' "$T/body" | head -n 4 | tr '\n' '|')"
  done < <(jq -r '.scrape[]' "$T/examples.json")

  # 8. Every route of the table, {name} = the example's first model; POST routes with the image request.
  while IFS=$'\t' read -r method path; do
    path=${path//\{name\}/${models[0]}}
    if [[ $method == POST ]]; then get "$path" --data-binary @"$T/request.json" -H "Content-Type: application/json"
    elif [[ $method == HEAD ]]; then get "$path" -I
    else get "$path"; fi
    [[ $status == 200 ]] && pass "$kind: $method $path answers 200" || fail "$kind: $method $path: $status $(head -c 200 "$T/body")"
  done < <(jq -r '.routes[] | @tsv' "$T/examples.json")

  # 9. The systemd unit's readiness wait (ExecStartPost=) succeeds against this server.
  if jq -e 'has("start_post")' <<<"$ex" >/dev/null; then
    mapfile -t post < <(jq -r '.start_post[]' <<<"$ex")
    post=("${post[@]//\{port\}/$port}")
    timeout 60 "${post[@]}" >"$T/post.out" 2>&1 && pass "$kind: ExecStartPost= (${post[*]}) succeeds" ||
      fail "$kind: ExecStartPost= failed: $(head -c 300 "$T/post.out")"
  fi

  # 10. --log_format json: the predict request's access line is one JSON object with its fields.
  if jq -e '.log_json' <<<"$ex" >/dev/null; then
    python3 - "$log" "deploy-docs-$kind-${models[0]}" <<'PY' && pass "$kind: --log_format json: the request's access line is a JSON object with its request id" ||
import json, sys
lines = [l for l in open(sys.argv[1]) if sys.argv[2] in l]
ok = False
for l in lines:
    r = json.loads(l)
    ok |= r.get("request_id") == sys.argv[2] and r.get("status") == 200 and \
        {"time", "method", "path", "ms", "client", "model", "images"} <= r.keys()
sys.exit(0 if ok else 1)
PY
      fail "$kind: no JSON access line for request deploy-docs-$kind-${models[0]}: $(grep -m 2 "deploy-docs-$kind" "$log" || tail -n 2 "$log")"
  fi

  # 11. SIGTERM: exit 0 well within the stop budget the example gives (systemd TimeoutStopSec=, the pod's grace
  #     period less its preStop sleep).
  budget=$(jq .stop_budget_s <<<"$ex")
  t0=$(date +%s%N)
  kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [[ $rc == 0 ]] && (( ms < budget * 1000 )) && pass "$kind: SIGTERM: exit 0 in $ms ms (budget $budget s)" ||
    fail "$kind: SIGTERM: exit $rc after $ms ms (budget $budget s): $(tail -n 2 "$log")"
done
finish
