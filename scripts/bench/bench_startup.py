#!/usr/bin/env python3
"""Whole-process start-up and memory of emkit's tools against their Python equivalents (issue 12, item 3).

    python3 scripts/bench/bench_startup.py [--bin DIR] [--runs 5] [--threads 2] [--only b64,help,coco,predict]
                                           [--json] [--pycocotools DIR] [--pycocotools-module NAME]

Each benchmark runs the emkit process and the Python process alternately (A B A B ...), --runs times each after one
untimed warm-up of each side, and reports the medians of the wall time and of the peak RSS (ru_maxrss of each child,
from os.wait4), with the ratios python/emkit for time and emkit/python for memory, against the issue's targets:

  b64      em-b64 IMG -o OUT  vs  the seed's Python script (read out of the seed guide's appendix at run time into a
           temporary folder; it writes ./input.json). Target: emkit no slower. The two outputs must be identical.
  help     em-b64, em-validate, em-metrics --help. Target: each under 20 ms.
  coco     em-metrics --algo detection on 5,000 images x 100 detections (scripts/bench/coco_synthetic.py)  vs
           pycocotools end to end (COCO(gt file), loadRes(results file), COCOeval evaluate/accumulate/summarize).
           Target: >= 20x. The 12 numbers of both sides are compared.
  predict  em-predict cold, one image, ResNet-50 at 224  vs  a plain torch + torchvision + PIL script (build resnet50,
           load a state dict, decode, resize, normalize, one forward under no_grad, print the top 5 as JSON), both
           with --threads N; and `em-predict --help` as the LibTorch load floor. Targets: >= 2.5x, RSS <= 0.7x.

Plain python3 (standard library only) runs this script. The Python sides run with --python (default /usr/bin/python3:
Debian's python3-torch, python3-torchvision, python3-pil, python3-numpy). Inputs that take a while to make (the COCO
files, an em-train model folder, the torchvision state dict) are made once in --cache (default out/bench-startup/);
delete that folder to remake them. Without --json the table is on stdout; with --json stdout carries one JSON object
and the table goes to stderr with the progress messages.
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = ("b64", "help", "coco", "predict")
HELP_TOOLS = ("em-b64", "em-validate", "em-metrics")
SEED_HEADING = "## 부록: 이미지 바이트 배열 변환 파이썬 코드"
COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
TARGETS = {
    "b64": "emkit no slower (time ratio >= 1)",
    "help": "< 20 ms",
    "coco": "time ratio >= 20",
    "predict": "time ratio >= 2.5 and RSS ratio <= 0.7",
}

# pycocotools end to end: both JSON files are read inside the timed process (COCO() and loadRes() take paths).
COCO_SCRIPT = r'''
import importlib, json, sys
name, gt_path, res_path, stats_path = sys.argv[1:5]
COCO = importlib.import_module(name + ".coco").COCO
COCOeval = importlib.import_module(name + ".cocoeval").COCOeval
gt = COCO(gt_path)
dt = gt.loadRes(res_path)
E = COCOeval(gt, dt, "bbox")
E.evaluate()
E.accumulate()
E.summarize()
with open(stats_path, "w") as f:
    json.dump([float(v) for v in E.stats], f)
'''

# The plain Python equivalent of `em-predict --model M --threads N IMAGE` for a ResNet-50 classifier.
PREDICT_SCRIPT = r'''
import json, sys
import torch
import torchvision
from PIL import Image
from torchvision import transforms
state_path, config_path, image_path, threads, size = sys.argv[1:6]
torch.set_num_threads(int(threads))
with open(config_path) as f:
    id2label = json.load(f)["id2label"]
labels = [id2label[str(i)] for i in range(len(id2label))]
model = torchvision.models.resnet50(num_classes=len(labels))
model.load_state_dict(torch.load(state_path))
model.eval()
preprocess = transforms.Compose([
    transforms.Resize((int(size), int(size)), interpolation=transforms.InterpolationMode.BILINEAR),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])
x = preprocess(Image.open(image_path).convert("RGB")).unsqueeze(0)
with torch.no_grad():
    probs = model(x).softmax(-1)[0]
scores, ids = probs.topk(min(5, len(labels)))
print(json.dumps([{"score": s, "label": labels[i]} for s, i in zip(scores.tolist(), ids.tolist())]))
'''

SAVE_STATE_SCRIPT = r'''
import sys, torch, torchvision
torch.save(torchvision.models.resnet50(weights=None, num_classes=int(sys.argv[2])).state_dict(), sys.argv[1])
'''


class BenchError(Exception):
    pass


GNU_TIME = "/usr/bin/time"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def exit_code(status):
    if hasattr(os, "waitstatus_to_exitcode"):
        return os.waitstatus_to_exitcode(status)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_once(cmd, work, cwd=None, env=None, name="run"):
    """Runs cmd as a child; returns (wall seconds, peak RSS KiB, stdout path). Raises BenchError on failure."""
    out_path = os.path.join(work, name + ".stdout")
    err_path = os.path.join(work, name + ".stderr")
    # Linux carries the peak RSS of the process that called exec into the program's ru_maxrss, so a child of this
    # Python reports at least this Python's ~17 MB however small it is. GNU time (Debian's `time`) forks the
    # program from its own small process and reports that one's peak: used when installed.
    argv = list(cmd) if cwd is None else ["env", "-C", cwd] + list(cmd)
    rss_path = os.path.join(work, name + ".rss")
    if os.access(GNU_TIME, os.X_OK):
        argv = [GNU_TIME, "-f", "%M", "-o", rss_path] + argv
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, dict(os.environ) if env is None else env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    rc = exit_code(status)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    if os.access(GNU_TIME, os.X_OK) and os.path.exists(rss_path):
        with open(rss_path) as f:
            lines = [l for l in f.read().split() if l.isdigit()]
        if lines:
            peak_kib = int(lines[-1])
    if rc != 0:
        with open(err_path, "rb") as f:
            tail = f.read().decode("utf-8", "replace").strip().splitlines()[-8:]
        raise BenchError("exit %d: %s\n    %s" % (rc, " ".join(cmd), "\n    ".join(tail)))
    return wall, peak_kib, out_path


def alternate(sides, runs, warmup, work):
    """sides: list of (key, cmd, cwd, env, warm). Runs them in turn, warm-up first; returns {key: [(s, KiB), ...]}."""
    for key, cmd, cwd, env, warm in sides:
        for i in range(warmup if warm else 0):
            run_once(cmd, work, cwd, env, key)
    samples = {key: [] for key, *_ in sides}
    for i in range(runs):
        for key, cmd, cwd, env, _ in sides:
            wall, kib, _ = run_once(cmd, work, cwd, env, key)
            samples[key].append((wall, kib))
    return samples


def summary(samples):
    walls = [w for w, _ in samples]
    kibs = [k for _, k in samples]
    return {"wall_ms_median": statistics.median(walls) * 1e3, "wall_ms_min": min(walls) * 1e3,
            "wall_ms_max": max(walls) * 1e3, "rss_mb_median": statistics.median(kibs) * 1024 / 1e6,
            "wall_ms": [round(w * 1e3, 2) for w in walls], "max_rss_kib": kibs}


def compare(em, py):
    return {"time_ratio": py["wall_ms_median"] / em["wall_ms_median"],
            "rss_ratio": em["rss_mb_median"] / py["rss_mb_median"]}


def tool(args, name):
    path = os.path.join(args.bin, name)
    if not os.access(path, os.X_OK):
        raise BenchError("%s: not found or not executable (--bin DIR)" % path)
    return path


def python_env(extra_path=None):
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = extra_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---------------------------------------------------------------------------------------------------------- b64

def extract_seed_script(seed_path, dest):
    """The first fenced code block after the appendix heading of the seed guide, without its fences."""
    lines, appendix, inside = [], False, False
    with open(seed_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(SEED_HEADING):
                appendix = True
                continue
            if appendix and line.startswith("```"):
                if inside:
                    break
                inside = True
                continue
            if inside:
                lines.append(line)
    text = "".join(lines)
    if "base64.b64encode" not in text or "open('input.json', 'w')" not in text:
        raise BenchError("%s: no base64 -> input.json script in the appendix" % seed_path)
    with open(dest, "w", encoding="utf-8") as f:
        f.write(text)


def bench_b64(args, work):
    em_b64 = tool(args, "em-b64")
    res = {"image": args.image}
    seed = os.path.join(args.shared, "seed", "easymaker-algorithm-guide.ko.md")
    seed_dir = os.path.join(work, "seed")
    os.makedirs(seed_dir)
    em_out = os.path.join(work, "b64-emkit.json")
    em_side = ("emkit", [em_b64, args.image, "-o", em_out], None, None, True)
    try:
        if not os.path.isfile(seed):
            raise BenchError("%s: no such file (--shared DIR or EM_SHARED)" % seed)
        extract_seed_script(seed, os.path.join(seed_dir, "seed_b64.py"))
    except BenchError as e:
        log("b64: Python side skipped: %s" % e)
        res["skipped"] = "python side: %s" % e
        res["emkit"] = summary(alternate([em_side], args.runs, args.warmup, work)["emkit"])
        return res
    py_side = ("python", [args.python, "seed_b64.py", args.image], seed_dir, None, True)
    s = alternate([em_side, py_side], args.runs, args.warmup, work)
    with open(em_out, "rb") as a, open(os.path.join(seed_dir, "input.json"), "rb") as b:
        res["identical_output"] = a.read() == b.read()
    if not res["identical_output"]:
        log("b64: WARNING: em-b64 -o and the seed script's input.json differ")
    res["emkit"], res["python"] = summary(s["emkit"]), summary(s["python"])
    res.update(compare(res["emkit"], res["python"]))
    res["target_met"] = res["time_ratio"] >= 1.0
    return res


# ---------------------------------------------------------------------------------------------------------- help

def bench_help(args, work):
    sides = [(name, [tool(args, name), "--help"], None, None, True) for name in HELP_TOOLS]
    s = alternate(sides, args.runs, args.warmup, work)
    res = {}
    for name in HELP_TOOLS:
        r = summary(s[name])
        r["target_met"] = r["wall_ms_median"] < 20.0
        res[name] = r
    return res


# ---------------------------------------------------------------------------------------------------------- coco

def coco_data(args):
    d = os.path.join(args.cache, "coco-%dx%d" % (args.coco_images, args.coco_dets))
    gt, dt = os.path.join(d, "ground_truth.json"), os.path.join(d, "results.json")
    if not (os.path.isfile(gt) and os.path.isfile(dt)):
        log("coco: writing %s (scripts/bench/coco_synthetic.py, once)" % d)
        cmd = [args.python, os.path.join(ROOT, "scripts", "bench", "coco_synthetic.py"), d + ".tmp",
               "--images", str(args.coco_images), "--dets", str(args.coco_dets)]
        if subprocess.call(cmd, stdout=sys.stderr) != 0:
            raise BenchError("coco: %s failed (it needs numpy: --python)" % " ".join(cmd))
        shutil.rmtree(d, ignore_errors=True)
        os.rename(d + ".tmp", d)
    return gt, dt


def bench_coco(args, work):
    em_metrics = tool(args, "em-metrics")
    gt, dt = coco_data(args)
    res = {"images": args.coco_images, "detections_per_image": args.coco_dets,
           "pycocotools_module": args.pycocotools_module, "pycocotools_dir": args.pycocotools}
    em_json = os.path.join(work, "coco-emkit.json")
    em_side = ("emkit", [em_metrics, "--algo", "detection", "--truth", gt, "--pred", dt, "--compact", "-q",
                         "-o", em_json], None, None, True)
    env = python_env(args.pycocotools)
    mod = args.pycocotools_module
    # The import check is the Python side's warm-up (its modules); em-metrics' warm-up reads the two files.
    probe = ("import importlib, json, sys; m = importlib.import_module(sys.argv[1]); "
             "importlib.import_module(sys.argv[1] + '.coco'); importlib.import_module(sys.argv[1] + '.cocoeval')\n"
             "try:\n    importlib.import_module(sys.argv[1] + '._mask'); compiled = True\n"
             "except ImportError:\n    compiled = False\n"
             "print(json.dumps({'file': m.__file__, 'version': getattr(m, '__version__', None), "
             "'compiled_mask': compiled}))")
    p = subprocess.run([args.python, "-c", probe, mod], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        why = (p.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        log("coco: ratio skipped: %s cannot import %s%s: %s" % (args.python, mod, (
            " (PYTHONPATH " + args.pycocotools + ")") if args.pycocotools else "", why))
        res["skipped"] = "cannot import %s with %s: %s" % (mod, args.python, why)
        res["emkit"] = summary(alternate([em_side], args.runs, args.warmup, work)["emkit"])
        return res
    res["pycocotools"] = json.loads(p.stdout.decode().strip().splitlines()[-1])
    if not res["pycocotools"]["compiled_mask"]:
        log("coco: note: %s has no compiled _mask extension (pure-Python box IoU): slower than PyPI's pycocotools"
            % mod)
    script = os.path.join(work, "coco_eval.py")
    with open(script, "w") as f:
        f.write(COCO_SCRIPT)
    stats = os.path.join(work, "coco-python-stats.json")
    py_side = ("python", [args.python, script, mod, gt, dt, stats], None, env, False)
    s = alternate([em_side, py_side], args.runs, args.warmup, work)
    with open(em_json) as f:
        em_numbers = json.load(f)
    with open(stats) as f:
        py_numbers = json.load(f)
    res["max_abs_diff"] = max(abs(em_numbers[k] - v) for k, v in zip(COCO_KEYS, py_numbers))
    res["AP"] = em_numbers["AP"]
    res["emkit"], res["python"] = summary(s["emkit"]), summary(s["python"])
    res.update(compare(res["emkit"], res["python"]))
    res["target_met"] = res["time_ratio"] >= 20.0
    return res


# ---------------------------------------------------------------------------------------------------------- predict

def predict_inputs(args):
    """An em-train model folder (ResNet-50 at --input_size) and a torchvision state dict of the same shape."""
    d = os.path.join(args.cache, "resnet50-%d" % args.size)
    model = os.path.join(d, "run", "model")
    if not os.path.isfile(os.path.join(model, "model.safetensors")):
        log("predict: training a ResNet-50 model folder at %d in %s (em-train, one step, once)" % (args.size, d))
        shutil.rmtree(d, ignore_errors=True)
        for split in ("train", "validation"):
            for label in ("a", "b"):
                os.makedirs(os.path.join(d, "data", split, label))
                shutil.copyfile(args.image, os.path.join(d, "data", split, label, "0" + os.path.splitext(
                    args.image)[1].lower()))
        cmd = [tool(args, "em-train"), "--algo", "classification", "--data", os.path.join(d, "data"),
               "--output_dir", os.path.join(d, "run"), "--input_size", str(args.size), "--model_config", "resnet-50",
               "--per_device_train_batch_size", "2", "--num_train_epochs", "1", "--eval_strategy", "no",
               "--learning_rate", "1e-3", "--threads", str(args.threads), "-q"]
        if subprocess.call(cmd, stdout=subprocess.DEVNULL) != 0:
            raise BenchError("predict: em-train failed: %s" % " ".join(cmd))
    with open(os.path.join(model, "config.json")) as f:
        num_labels = len(json.load(f)["id2label"])
    state = os.path.join(args.cache, "torchvision-resnet50-%dclasses.pt" % num_labels)
    if not os.path.isfile(state):
        log("predict: saving torchvision resnet50(weights=None) to %s (once)" % state)
        if subprocess.call([args.python, "-c", SAVE_STATE_SCRIPT, state + ".tmp", str(num_labels)]) != 0:
            raise BenchError("predict: %s cannot save a torchvision resnet50 (needs python3-torchvision)"
                             % args.python)
        os.rename(state + ".tmp", state)
    return model, state


def bench_predict(args, work):
    em_predict = tool(args, "em-predict")
    model, state = predict_inputs(args)
    script = os.path.join(work, "predict.py")
    with open(script, "w") as f:
        f.write(PREDICT_SCRIPT)
    sides = [("emkit", [em_predict, "--model", model, "--threads", str(args.threads), "-q", args.image],
              None, None, True),
             ("python", [args.python, script, state, os.path.join(model, "config.json"), args.image,
                         str(args.threads), str(args.size)], None, None, True),
             ("floor", [em_predict, "--help"], None, None, True)]
    s = alternate(sides, args.runs, args.warmup, work)
    outputs = {}
    for key in ("emkit", "python"):
        with open(os.path.join(work, key + ".stdout")) as f:
            text = f.read()
        try:
            outputs[key] = json.loads(text)
        except ValueError:
            outputs[key] = None
        if not isinstance(outputs[key], list) or not outputs[key]:
            raise BenchError("predict: the %s side printed no prediction list: %.200s" % (key, text))
    res = {"image": args.image, "size": args.size, "threads": args.threads, "model": model, "state_dict": state,
           "emkit_top1": outputs["emkit"][0], "python_top1": outputs["python"][0],
           "emkit": summary(s["emkit"]), "python": summary(s["python"]), "floor": summary(s["floor"])}
    res.update(compare(res["emkit"], res["python"]))
    res["target_met"] = res["time_ratio"] >= 2.5 and res["rss_ratio"] <= 0.7
    return res


# ---------------------------------------------------------------------------------------------------------- report

def cpu_info():
    model, flags = None, set()
    try:
        text = subprocess.run(["lscpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and model is None:
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except OSError:
        pass
    if not flags and os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
            flags = set(m.group(1).split()) if m else set()
    wanted = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f")
    return {"model_name": model or platform.processor() or "?", "cores": os.cpu_count(),
            "flags": {k: k in flags for k in wanted}}


def links_libtorch(path):
    """True / False from readelf -d's NEEDED entries (None when readelf is missing)."""
    try:
        text = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    except OSError:
        return None
    return bool(re.search(rb"NEEDED.*\[libtorch", text))


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(results, args):
    rows = [("benchmark", "emkit ms", "python ms", "time py/em", "emkit MB", "python MB", "RSS em/py", "target",
             "met")]

    def row(name, em, py=None, ratios=None, target="", met=None):
        ratios = ratios or {}
        rows.append((name, fmt(em["wall_ms_median"], ".1f"), fmt(py and py["wall_ms_median"], ".1f"),
                     fmt(ratios.get("time_ratio"), ".2f") + ("x" if "time_ratio" in ratios else ""),
                     fmt(em["rss_mb_median"], ".1f"), fmt(py and py["rss_mb_median"], ".1f"),
                     fmt(ratios.get("rss_ratio"), ".2f") + ("x" if "rss_ratio" in ratios else ""), target,
                     "-" if met is None else ("yes" if met else "NO")))

    notes = []
    for name in BENCHMARKS:
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            rows.append((name, "error", "", "", "", "", "", TARGETS[name], "-"))
            notes.append("%s: %s" % (name, r["error"]))
            continue
        if name == "b64":
            row("b64 " + os.path.basename(r["image"]), r["emkit"], r.get("python"), r if "python" in r else None,
                TARGETS[name], r.get("target_met"))
            if "skipped" in r:
                notes.append("b64: ratio skipped: " + r["skipped"])
            elif not r["identical_output"]:
                notes.append("b64: em-b64's output differs from the seed script's input.json")
        elif name == "help":
            for t in HELP_TOOLS:
                row(t + " --help", r[t], target="< 20 ms", met=r[t]["target_met"])
        elif name == "coco":
            label = "coco %dx%d" % (r["images"], r["detections_per_image"])
            row(label, r["emkit"], r.get("python"), r if "python" in r else None, TARGETS[name], r.get("target_met"))
            if "skipped" in r:
                notes.append("coco: ratio skipped: " + r["skipped"])
            else:
                pc = r["pycocotools"]
                notes.append("coco: python side = %s (%s%s); max |diff| of the 12 numbers %.3g (AP %.4f)" % (
                    args.pycocotools_module, pc["file"], "" if pc["compiled_mask"] else ", pure-Python box IoU",
                    r["max_abs_diff"], r["AP"]))
        elif name == "predict":
            row("predict resnet50@%d t%d" % (r["size"], r["threads"]), r["emkit"], r["python"], r,
                TARGETS[name], r["target_met"])
            row("LibTorch load floor", r["floor"], target="(em-predict --help)")
    widths = [max(len(str(x[i])) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) if i in (0, 7, 8) else str(c).rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines + [""] + notes)


def default_image(shared):
    img = os.path.join(shared, "data", "images", "chelsea.png")
    if os.path.isfile(img):
        return img
    pngs = sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "image", "rgb_*.png"))) + sorted(
        glob.glob(os.path.join(ROOT, "tests", "golden", "image", "*.png")))
    return pngs[0] if pngs else img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help="emkit tools (default build/bin)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each side (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="compute threads of both predict sides (default 2)")
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma list of " + ", ".join(BENCHMARKS))
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout (the table goes to stderr)")
    ap.add_argument("--python", default="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                    else sys.executable, help="interpreter of the Python sides (default /usr/bin/python3)")
    ap.add_argument("--pycocotools", metavar="DIR", help="prepended to PYTHONPATH for the pycocotools side")
    ap.add_argument("--pycocotools-module", default="pycocotools", metavar="NAME",
                    help="package name to import (default pycocotools; e.g. pycocotools_ref)")
    ap.add_argument("--image", help="image of b64 and predict (default ../shared/data/images/chelsea.png)")
    ap.add_argument("--size", type=int, default=224, help="predict: ResNet-50 input size (default 224)")
    ap.add_argument("--coco-images", type=int, default=5000)
    ap.add_argument("--coco-dets", type=int, default=100)
    ap.add_argument("--shared", default=os.environ.get("EM_SHARED", os.path.join(os.path.dirname(ROOT), "shared")),
                    help="the team's shared folder (seed guide, images; default EM_SHARED or ../shared)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "out", "bench-startup"),
                    help="made-once inputs (default out/bench-startup)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (outputs, stderr of each side)")
    args = ap.parse_args()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in only if x not in BENCHMARKS]
    if bad or not only or args.runs < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--only takes %s; --runs >= 1, --warmup >= 0, --threads >= 1" % ",".join(BENCHMARKS))
    args.bin = os.path.abspath(args.bin)
    args.cache = os.path.abspath(args.cache)
    args.image = os.path.abspath(args.image or default_image(args.shared))
    if args.pycocotools:
        args.pycocotools = os.path.abspath(args.pycocotools)
    if ("b64" in only or "predict" in only) and not os.path.isfile(args.image):
        ap.error("%s: no such image (--image)" % args.image)
    os.makedirs(args.cache, exist_ok=True)

    cpu = cpu_info()
    header = ["cpu: %s, %d cores; %s" % (cpu["model_name"], cpu["cores"], ", ".join(
        "%s %s" % (k, "yes" if v else "no") for k, v in cpu["flags"].items()))]
    tools = {}
    for name in ("em-b64", "em-validate", "em-metrics", "em-predict"):
        path = os.path.join(args.bin, name)
        tools[name] = {"links_libtorch": links_libtorch(path) if os.path.isfile(path) else None}
    header.append("tools: %s; linked to libtorch (readelf -d): %s" % (args.bin, ", ".join(
        "%s %s" % (k, {True: "yes", False: "no", None: "?"}[v["links_libtorch"]]) for k, v in tools.items())))
    header.append("python sides: %s (%s); runs %d per side, alternating, after %d warm-up; threads %d" % (
        args.python, subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                                    stdout=subprocess.PIPE).stdout.decode().strip(), args.runs, args.warmup,
        args.threads))
    load = os.getloadavg()
    header.append("load average before: %.2f %.2f %.2f" % load)
    out = sys.stderr if args.json else sys.stdout
    print("\n".join(header), file=out, flush=True)

    work = tempfile.mkdtemp(prefix="em-bench-startup.")
    results = {}
    try:
        for name in only:
            log("%s ..." % name)
            sub = os.path.join(work, name)
            os.makedirs(sub)
            t0 = time.perf_counter()
            try:
                results[name] = globals()["bench_" + name](args, sub)
            except BenchError as e:
                log("%s: error: %s" % (name, e))
                results[name] = {"error": str(e)}
            log("%s: done in %.0f s" % (name, time.perf_counter() - t0))
    finally:
        if args.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(table(results, args), file=out)
    print("load average after: %.2f %.2f %.2f" % load_after, file=out, flush=True)
    if args.json:
        doc = {"cpu": cpu, "bin": args.bin, "tools": tools, "python": args.python, "runs": args.runs,
               "warmup": args.warmup, "threads": args.threads, "load_before": load, "load_after": load_after,
               "targets": {k: TARGETS[k] for k in only}, "results": results}
        print(json.dumps(doc, indent=2))
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
