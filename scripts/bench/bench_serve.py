#!/usr/bin/env python3
"""Load test of em-serve on loopback: N concurrent clients for a bounded time against a ResNet-50 at 224x224.

    python3 scripts/bench/bench_serve.py --bin build/bin [--clients 8] [--seconds 20] [--model DIR] [--overload]

Prints requests/s, images/s, p50/p99 latency and errors, next to the model-bound ceiling measured in the same run:
the forward throughput (predict() as the batcher runs it, on copies of the request's image) at the best batch size,
from `em-serve --measure_ceiling`. A scan over batch sizes 1, 2, 4 ... picks the best size; then the load is applied
in --rounds phases, each bracketed by a measurement of the ceiling at that size, so that a machine whose speed drifts
(other work on it) is compared with itself: ratio = images/s served / mean of the ceiling measurements.

--overload adds a phase after those: a second em-serve with a small --max_queue_images (--overload_queue_images)
driven by --overload_clients closed-loop clients. It reports the accepted requests (requests/s, p50/p99 latency, next
to the normal phases'), the shed ones (503 with Retry-After: how many, and how fast they were answered), every other
failure as an error, and the server's RSS sampled every 0.2 s from /proc/PID/status: a server that sheds load stays
fast for what it accepts and bounded in memory. By default a client told 503 waits its Retry-After before the next
request, as well-behaved clients do; --overload_ignore_retry_after makes them retry at once.

Without --model, a ResNet-50 (the seed's default classification model) with 224x224 inputs is made once under
--work by one short em-train run on a generated two-class dataset (random weights are as slow as trained ones).
Only the Python standard library is used (http.client + threads), so any python3 runs it.
"""
import argparse
import base64
import http.client
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib


def png_bytes(width, height, seed):
    """An RGB PNG with a smooth pattern (compresses like a photo rather than like noise or a flat colour)."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            row += bytes(((x * 3 + seed * 40) % 256, (y * 2 + x) % 256, (x * y // 64 + seed * 90) % 256))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
            + chunk(b"IEND", b""))


def make_model(args, work):
    model = os.path.join(work, "run", "model")
    if os.path.exists(os.path.join(model, "model.safetensors")):
        return model
    data = os.path.join(work, "data")
    for split, n in (("train", 2), ("validation", 1)):
        for label in ("a", "b"):
            folder = os.path.join(data, split, label)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                with open(os.path.join(folder, f"{i}.png"), "wb") as f:
                    f.write(png_bytes(args.size, args.size, i + (label == "b") * 3))
    print(f"making a ResNet-50 ({args.size}x{args.size}) under {work} with em-train ...", file=sys.stderr)
    subprocess.run([os.path.join(args.bin, "em-train"), "--algo", "classification", "--data", data,
                    "--output_dir", os.path.join(work, "run"), "--overwrite_output_dir",
                    "--input_size", str(args.size), "--per_device_train_batch_size", "2",
                    "--per_device_eval_batch_size", "2", "--num_train_epochs", "1", "--num_workers", "1",
                    "--learning_rate", "1e-4", "-q"], check=True, stdout=subprocess.DEVNULL)
    return model


def measure_ceiling(args, model, image_path, batch_sizes, seconds):
    """em-serve --measure_ceiling: {"batch_sizes": [{"batch_size", "images_per_second", ...}], "best": {...}}."""
    cmd = [os.path.join(args.bin, "em-serve"), "--model", model, "--measure_ceiling", image_path,
           "--batch_size", str(args.max_batch_size), "--ceiling_seconds", str(seconds), "-q"]
    if batch_sizes:
        cmd += ["--ceiling_batch_sizes", ",".join(str(b) for b in batch_sizes)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.bf16:
        cmd.append("--bf16")
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)


def start_server(args, model, extra=()):
    cmd = [os.path.join(args.bin, "em-serve"), "--model", model, "--port", "0",
           "--batch_size", str(args.max_batch_size), "--max_batch_delay_ms", str(args.max_batch_delay_ms), "-q",
           *extra]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.bf16:
        cmd.append("--bf16")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            # Keep draining stderr so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            port = int(m.group(1))
            wait_ready(proc, port)
            return proc, port
    raise SystemExit(f"em-serve did not start (exit {proc.wait()})")


def wait_ready(proc, port, timeout=600):
    """em-serve may listen before its model is loaded: /health answers 503 until it is ready, then 200."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"em-serve exited ({proc.returncode}) before it was ready")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit(f"em-serve was not ready within {timeout} s")


def retry_after_seconds(value):
    """Retry-After in seconds (delta-seconds form; an HTTP date or garbage counts as 1 s)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def client(port, body, deadline, out, honor_retry_after=False):
    """Posts `body` back to back until `deadline`. A 503 with Retry-After is shed load (its latency kept apart, and
    with honor_retry_after the client waits that long before its next request); any other failure is an error."""
    latencies, shed, errors, conn = [], [], 0, None
    while time.perf_counter() < deadline:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t0 = time.perf_counter()
            conn.request("POST", "/inference", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            t1 = time.perf_counter()
            retry_after = resp.getheader("Retry-After")
            if resp.status == 200 and data.startswith(b"["):
                latencies.append(t1 - t0)
            elif resp.status == 503 and retry_after is not None:
                shed.append(t1 - t0)
            else:
                errors += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            if resp.status == 503 and retry_after is not None and honor_retry_after:
                time.sleep(max(0.0, min(retry_after_seconds(retry_after), deadline - time.perf_counter())))
        except (OSError, http.client.HTTPException):
            errors += 1
            conn = None
    out.append((latencies, errors, shed))


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def load_phase(port, body, clients, seconds, honor_retry_after=False):
    """clients keep-alive connections posting `body` back to back for `seconds`:
    (latencies of the 200s, errors, latencies of the 503s with Retry-After, elapsed)."""
    results, threads = [], []
    start = time.perf_counter()
    for _ in range(clients):
        t = threading.Thread(target=client, args=(port, body, start + seconds, results, honor_retry_after))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return ([x for lat, _, _ in results for x in lat], sum(e for _, e, _ in results),
            [x for _, _, sh in results for x in sh], elapsed)


def percentiles_ms(latencies):
    """(p50, p99) in ms, NaN when fewer than two values."""
    if len(latencies) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(sorted(latencies), n=100)
    return round(q[49] * 1000, 1), round(q[98] * 1000, 1)


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def sample_rss(pid, stop, out, period=0.2):
    """Appends the server's RSS (MiB) every `period` s until `stop` is set."""
    while not stop.is_set():
        value = rss_mib(pid)
        if value is not None:
            out.append(value)
        stop.wait(period)


def overload_phase(args, model, body):
    """A second em-serve with --max_queue_images args.overload_queue_images under args.overload_clients clients."""
    proc, port = start_server(args, model, ["--max_queue_images", str(args.overload_queue_images)])
    rss, stop = [], threading.Event()
    try:
        for _ in range(3):  # warm-up, as for the normal phases
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("POST", "/inference", body)
            conn.getresponse().read()
        rss_before = rss_mib(proc.pid)
        stats0 = get_json(port, "/health")["stats"]
        sampler = threading.Thread(target=sample_rss, args=(proc.pid, stop, rss), daemon=True)
        sampler.start()
        accepted, errors, shed, elapsed = load_phase(port, body, args.overload_clients, args.overload_seconds,
                                                     honor_retry_after=not args.overload_ignore_retry_after)
        stop.set()
        sampler.join()
        stats1 = get_json(port, "/health")["stats"]
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        server_exit = proc.wait(timeout=120)
    batches = stats1["batches"] - stats0["batches"]
    p50, p99 = percentiles_ms(accepted)
    shed_p50, shed_p99 = percentiles_ms(shed)
    return {
        "clients": args.overload_clients, "max_queue_images": args.overload_queue_images,
        "seconds": round(elapsed, 2), "clients_wait_retry_after": not args.overload_ignore_retry_after,
        "accepted": len(accepted), "accepted_per_second": round(len(accepted) / elapsed, 3),
        "images_per_second": round(len(accepted) * args.images_per_request / elapsed, 3),
        "latency_ms_p50": p50, "latency_ms_p99": p99,
        "shed": len(shed), "shed_per_second": round(len(shed) / elapsed, 3),
        "shed_latency_ms_p50": shed_p50, "shed_latency_ms_p99": shed_p99,
        "errors": errors,
        "mean_batch_size": round((stats1["images"] - stats0["images"]) / batches, 2) if batches else None,
        "rss_mib_before": round(rss_before, 1) if rss_before is not None else None,
        "rss_mib_min": round(min(rss), 1) if rss else None, "rss_mib_max": round(max(rss), 1) if rss else None,
        "rss_samples": len(rss), "server_exit": server_exit,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin", help="folder of em-serve and em-train")
    ap.add_argument("--model", help="model folder (default: a ResNet-50 made under --work)")
    ap.add_argument("--work", default="/tmp/em-bench-serve", help="where the generated model and image live")
    ap.add_argument("--size", type=int, default=224, help="input size of the generated model and image")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60, help="length of the load, all rounds together")
    ap.add_argument("--rounds", type=int, default=3, help="load phases, each between two ceiling measurements")
    ap.add_argument("--images_per_request", type=int, default=1)
    ap.add_argument("--max_batch_size", type=int, default=16)
    ap.add_argument("--max_batch_delay_ms", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="LibTorch threads (0 = em-serve's default)")
    ap.add_argument("--scan_seconds", type=float, default=4, help="per batch size, in the scan for the best size")
    ap.add_argument("--ceiling_seconds", type=float, default=8, help="each ceiling measurement at the best size")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--overload", action="store_true",
                    help="after the normal phases, an overload phase against a small --max_queue_images")
    ap.add_argument("--overload_clients", type=int, default=64, help="--overload: concurrent clients")
    ap.add_argument("--overload_queue_images", type=int, default=16,
                    help="--overload: the server's --max_queue_images")
    ap.add_argument("--overload_seconds", type=float, default=20, help="--overload: length of the phase")
    ap.add_argument("--overload_ignore_retry_after", action="store_true",
                    help="--overload: clients retry a 503 at once instead of waiting its Retry-After")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    model = args.model or make_model(args, args.work)
    image_path = os.path.join(args.work, f"image_{args.size}.png")
    with open(image_path, "wb") as f:
        f.write(png_bytes(args.size, args.size, 7))
    with open(image_path, "rb") as f:
        encoded = base64.b64encode(f.read()).decode()
    body = json.dumps({"instances": [{"data": encoded}] * args.images_per_request}).encode()

    scan = measure_ceiling(args, model, image_path, None, args.scan_seconds)
    best = scan["best"]["batch_size"]
    ceilings = [measure_ceiling(args, model, image_path, [best], args.ceiling_seconds)["best"]["images_per_second"]]
    proc, port = start_server(args, model)
    latencies, errors, elapsed, phases = [], 0, 0.0, []
    try:
        for _ in range(3):  # warm-up: the first forward passes allocate
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("POST", "/inference", body)
            conn.getresponse().read()
        stats0 = get_json(port, "/health")["stats"]
        for r in range(args.rounds):
            lat, err, shed, sec = load_phase(port, body, args.clients, args.seconds / args.rounds)
            err += len(shed)  # here every answer but a 200 is an error, a 503 too
            ceilings.append(measure_ceiling(args, model, image_path, [best], args.ceiling_seconds)["best"]
                            ["images_per_second"])
            served = len(lat) * args.images_per_request / sec
            phases.append({"images_per_second": round(served, 3),
                           "ceiling": round((ceilings[-2] + ceilings[-1]) / 2, 3),
                           "ratio": round(served / ((ceilings[-2] + ceilings[-1]) / 2), 3)})
            latencies += lat
            errors += err
            elapsed += sec
        stats1 = get_json(port, "/health")["stats"]
    finally:
        proc.send_signal(signal.SIGTERM)
        server_exit = proc.wait(timeout=120)

    latencies.sort()
    requests = len(latencies)
    q = statistics.quantiles(latencies, n=100) if requests >= 2 else [float("nan")] * 99
    images_per_s = requests * args.images_per_request / elapsed
    ceiling = statistics.mean(ceilings)
    batches = stats1["batches"] - stats0["batches"]
    figures = {
        "clients": args.clients, "seconds": round(elapsed, 2), "requests": requests, "errors": errors,
        "requests_per_second": round(requests / elapsed, 3), "images_per_second": round(images_per_s, 3),
        "latency_ms_p50": round(q[49] * 1000, 1), "latency_ms_p99": round(q[98] * 1000, 1),
        "mean_batch_size": round((stats1["images"] - stats0["images"]) / batches, 2) if batches else None,
        # Share of the load's wall time the batcher spent in forward passes: what the serving machinery leaves to
        # the model, independent of how fast the (possibly shared) machine happens to be.
        "model_utilization": round((stats1["busy_seconds"] - stats0["busy_seconds"]) / elapsed, 3),
        "scan": {r["batch_size"]: round(r["images_per_second"], 3) for r in scan["batch_sizes"]},
        "ceiling_batch_size": best, "ceiling_measurements": [round(c, 3) for c in ceilings],
        "ceiling_images_per_second": round(ceiling, 3), "ratio": round(images_per_s / ceiling, 3),
        "phases": phases, "server_exit": server_exit,
    }
    if args.overload:
        figures["overload"] = overload_phase(args, model, body)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"em-serve, {args.clients} clients, {elapsed:.1f} s of load in {args.rounds} phases, "
          f"{args.images_per_request} image(s) of {args.size}x{args.size} per request, "
          f"max_batch_size {args.max_batch_size}, max_batch_delay_ms {args.max_batch_delay_ms}")
    print(f"  requests/s      {figures['requests_per_second']:.3f}  ({requests} ok, {errors} errors)")
    print(f"  images/s        {images_per_s:.3f}  (mean batch {figures['mean_batch_size']}, model busy "
          f"{figures['model_utilization'] * 100:.1f}% of the time)")
    print(f"  latency         p50 {figures['latency_ms_p50']:.1f} ms, p99 {figures['latency_ms_p99']:.1f} ms")
    print(f"  scan images/s by batch size: {figures['scan']}")
    print(f"  ceiling         {ceiling:.3f} images/s at batch {best} (mean of {figures['ceiling_measurements']})")
    print(f"  phases          {phases}")
    print(f"  ratio           {figures['ratio'] * 100:.1f}% of the ceiling (target >= 90%)")
    print(f"  server exit     {server_exit} after SIGTERM")
    if args.overload:
        o = figures["overload"]
        print(f"overload: {o['clients']} clients, {o['seconds']:.1f} s against --max_queue_images "
              f"{o['max_queue_images']} (after a 503 the clients "
              f"{'wait its Retry-After' if o['clients_wait_retry_after'] else 'retry at once'})")
        print(f"  accepted        {o['accepted_per_second']:.3f} requests/s ({o['accepted']}; normal phases "
              f"{figures['requests_per_second']:.3f}), mean batch {o['mean_batch_size']}")
        print(f"  latency         p50 {o['latency_ms_p50']:.1f} ms, p99 {o['latency_ms_p99']:.1f} ms "
              f"(normal phases p50 {figures['latency_ms_p50']:.1f} ms, p99 {figures['latency_ms_p99']:.1f} ms)")
        print(f"  shed (503)      {o['shed']} ({o['shed_per_second']:.1f}/s), answered in p50 "
              f"{o['shed_latency_ms_p50']:.1f} ms, p99 {o['shed_latency_ms_p99']:.1f} ms")
        print(f"  errors          {o['errors']} (anything but a 200 or a 503 with Retry-After)")
        print(f"  server RSS      min {o['rss_mib_min']} MiB, max {o['rss_mib_max']} MiB over {o['rss_samples']} "
              f"samples (before the load {o['rss_mib_before']} MiB)")
        print(f"  server exit     {o['server_exit']} after SIGTERM")


if __name__ == "__main__":
    main()
