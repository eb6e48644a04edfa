#!/usr/bin/env bash
# Model-level compute speed against the reference implementations, on in-memory random batches with random weights,
# the same LibTorch threads on both sides, fp32 and bf16 autocast: em-bench-models vs bench_models_reference.py
# (torchvision's resnet50; HF transformers' SegformerForSemanticSegmentation and DetrForObjectDetection when
# `import transformers` works with the chosen Python). Runs alternate (ours, reference, ours, ...) for --rounds rounds;
# each cell prints the median time of each side and the median of the per-round ratios reference/ours (> 1: we are
# faster). A reference that cannot be imported is reported as not available, with our own times.
#   scripts/bench/bench_models.sh [--threads 2] [--build build] [--python /usr/bin/python3] [--rounds 3] [--runs 3]
#                                 [--models "resnet-50 mit-b0 detr-resnet-50"] [--precisions "fp32 bf16"]
# PYTHONPATH is passed through, so a transformers installed elsewhere can be used.
# Output: one JSON line per cell on stdout; the load average before and after on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=2 build=$root/build python=/usr/bin/python3 rounds=3 runs=3 models="resnet-50 mit-b0 detr-resnet-50"
precisions="fp32 bf16"
while (($#)); do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --precisions) precisions=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ours=$build/bin/em-bench-models
reference=$root/scripts/bench/bench_models_reference.py
[[ -x $ours ]] || { echo "no $ours: build the em-bench-models target first" >&2; exit 1; }

# cells MODEL: "mode batch size num_labels" lines, the issue's cells.
cells() {
  case $1 in
    resnet-50) printf '%s\n' "infer 1 224 1000" "infer 16 224 1000" "train 16 224 1000" ;;
    mit-b0) printf '%s\n' "infer 2 256 150" "train 2 256 150" ;;
    detr-resnet-50) printf '%s\n' "infer 1 512 91" ;;
  esac
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores, --threads $threads" >&2
for model in $models; do
  while read -r mode batch size labels; do
    for precision in $precisions; do
      flag=()
      [[ $precision == bf16 ]] && flag=(--bf16)
      args=(--model "$model" --mode "$mode" --batch "$batch" --size "$size" --num_labels "$labels" --runs "$runs"
            --warmup 1 "${flag[@]}")
      ours_ms=() ref_ms=() available=true reason=""
      for ((r = 0; r < rounds; r++)); do
        ours_ms+=("$("$ours" "${args[@]}" --threads "$threads" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["ms"]["median"])')")
        if $available; then
          set +e
          out=$("$python" "$reference" "${args[@]}" --threads "$threads")
          rc=$?
          set -e
          if ((rc == 3)); then
            available=false
            reason=$(printf '%s' "$out" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["reason"])')
            echo "$model: the reference is not available ($reason); reporting our own times" >&2
          elif ((rc != 0)); then
            echo "$model: the reference failed (exit $rc)" >&2; exit 1
          else
            ref_ms+=("$(printf '%s' "$out" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["ms"]["median"])')")
          fi
        fi
      done
      "$python" - "$model" "$mode" "$batch" "$size" "$precision" "$threads" "${ours_ms[*]}" "${ref_ms[*]:-}" "$reason" <<'EOF'
import json, statistics, sys
model, mode, batch, size, precision, threads, ours, ref, reason = sys.argv[1:10]
ours = [float(x) for x in ours.split()]
ref = [float(x) for x in ref.split()] if ref.strip() else []
row = {"model": model, "mode": mode, "batch": int(batch), "size": int(size), "precision": precision,
       "threads": int(threads), "ours_ms": round(statistics.median(ours), 1)}
if ref:
    row["reference_ms"] = round(statistics.median(ref), 1)
    row["speedup"] = round(statistics.median([r / o for r, o in zip(ref, ours)]), 3)
else:
    row["reference"] = "not available: " + reason
print(json.dumps(row))
EOF
    done
  done < <(cells "$model")
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
