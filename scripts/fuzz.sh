#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (em_base under ASan+UBSan, clang, no LibTorch) into build-fuzz/ and runs each
# for a bounded time, one after the other, on a corpus seeded from fuzz/seeds/ and the team's ../shared/data (and
# ../shared/fixtures).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60; docs/fuzzing.md)
#   EM_FUZZ_TARGETS="image safetensors"  only these targets
#   EM_FUZZ_BUILD=DIR                    build folder (default build-fuzz/)
# Findings (crash-*, leak-*, timeout-*, oom-*) land in build-fuzz/findings/TARGET/; the log of each run in
# build-fuzz/logs/TARGET.log. Prints a table (target, seconds, runs, execs/s, corpus, findings); exits 1 when a target
# found something, 2 on a usage error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2; }
build=${EM_FUZZ_BUILD:-$root/build-fuzz}
shared=${EM_SHARED:-$root/../shared}/data
all_targets="image base64 request safetensors coco_annotations coco_results classification_jsonl segmentation_split
             id2label hyperparameters model_config preprocessor_config torch_pickle"
targets=${EM_FUZZ_TARGETS:-$all_targets}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (apt-get install clang)" >&2; exit 1; }
# The machine is shared with other builds: low priority, two jobs.
nice -n 10 cmake -S "$root" -B "$build" -G Ninja -DEM_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice -n 10 cmake --build "$build" -j "${EM_BUILD_JOBS:-2}"

# seeds TARGET DIR: fills DIR with the target's starting inputs (copies, so the corpus folder never writes to them).
seeds() {
  local target=$1 dir=$2
  mkdir -p "$dir"
  if [[ -d $root/fuzz/seeds/$target ]]; then cp "$root/fuzz/seeds/$target"/* "$dir"/; fi
  # FOLDER_FILE names: unique for these sets, never hidden (libFuzzer and ls skip dot files).
  copy() { local f; for f in "$@"; do [[ -f $f ]] && cp "$f" "$dir/$(basename "$(dirname "$f")")_$(basename "$f")"; done; return 0; }
  case $target in
    image)
      copy "$root"/tests/golden/image/rgb_37x23.* "$root"/tests/golden/image/gray_29x31.p?m "$root"/examples/requests/*.png
      copy "$shared"/images/*.png "$shared"/coco-mini/train/*.jpg
      copy $(ls "$shared"/camvid-mini/train/annotations/*.png 2>/dev/null | head -n 3) ;;
    base64 | request)
      local f
      for f in "$root"/tests/golden/image/rgb_37x23.{png,jpg,gif}; do
        if [[ $target == base64 ]]; then base64 "$f" >"$dir/$(basename "$f").b64"
        else printf '{"instances": [{"data": "%s"}]}' "$(base64 -w0 "$f")" >"$dir/$(basename "$f").json"; fi
      done
      if [[ $target == request ]]; then copy "$root"/examples/requests/*.json; fi ;;
    safetensors) copy "$root"/../shared/fixtures/*/expected.safetensors "$root"/../shared/fixtures/resnet-basic-tiny/input.safetensors ;;
    coco_annotations) copy "$shared"/coco-mini/*/_annotations.coco.json "$shared"/coco-eval-pair/ground_truth.json ;;
    coco_results)
      copy "$shared"/coco-eval-pair/detections.json
      if [[ -f $shared/coco-eval-pair/ground_truth.json ]]; then
        { cat "$shared"/coco-eval-pair/ground_truth.json; printf '\n#####\n'; cat "$shared"/coco-eval-pair/detections.json; } \
          >"$dir/coco-eval-pair.json"
      fi ;;
    classification_jsonl)
      copy "$root"/tests/golden/classification_cli/*.jsonl
      { cat "$root"/tests/golden/classification_cli/truth.jsonl; printf '\n#####\n'
        cat "$root"/tests/golden/classification_cli/pred.jsonl; } >"$dir/classification_cli_pair.jsonl" ;;
    segmentation_split) copy "$shared"/camvid-mini/*/*.json ;;
    id2label) copy "$shared"/camvid-mini/resources/id2label.json ;;
    hyperparameters) ;;
    # The parity fixtures' config.json files (HF-shaped, made by others: ResNet bottleneck and basic, SegFormer, DETR).
    model_config) copy "$root"/../shared/fixtures/*/config.json ;;
    preprocessor_config) ;;  # fuzz/seeds only: emkit's three and HF's published shapes (no real file in ../shared)
    torch_pickle) ;;  # fuzz/seeds only: made by scripts/golden/torch_pickle.py with Debian's python3-torch
  esac
  chmod -R u+w "$dir"
}

# Longest input libFuzzer makes: images and safetensors need room for real files' headers and some data.
max_len() { case $1 in image | safetensors | coco_results | coco_annotations | torch_pickle) echo 65536 ;; *) echo 8192 ;; esac; }

# Files the parsers read (segmentation splits, id2label, hyperparameters) go to memory when /dev/shm is there.
tmp=${TMPDIR:-/tmp}
[[ -d /dev/shm && -w /dev/shm ]] && tmp=/dev/shm

mkdir -p "$build/logs" "$build/findings"
declare -A runs rate corpus found
status=0
for target in $targets; do
  bin=$build/fuzz/fuzz_$target
  [[ -x $bin ]] || { echo "fuzz.sh: no target $target ($bin)" >&2; exit 2; }
  work=$build/corpus/$target seed_dir=$build/seeds/$target findings=$build/findings/$target
  rm -rf "$seed_dir"
  seeds "$target" "$seed_dir"
  mkdir -p "$work" "$findings"
  echo "fuzz.sh: $target for ${seconds}s ($(ls "$seed_dir" | wc -l) seeds, $(ls "$work" | wc -l) in the corpus)" >&2
  # The first folder is the corpus libFuzzer grows (kept between runs); the seeds are read only.
  set +e
  TMPDIR=$tmp nice -n 10 "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$target")" \
    -print_final_stats=1 -artifact_prefix="$findings/" "$work" "$seed_dir" >"$build/logs/$target.log" 2>&1
  rc=$?
  set -e
  runs[$target]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/logs/$target.log" | grep -o '[0-9]*$' || echo "?")
  rate[$target]=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$build/logs/$target.log" | grep -o '[0-9]*$' || echo "?")
  corpus[$target]=$(ls "$work" | wc -l)
  found[$target]=$(find "$findings" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \
                   -o -name 'slow-unit-*' \) | wc -l)
  if ((rc != 0 || found[$target] > 0)); then
    status=1
    echo "fuzz.sh: $target: exit $rc, see $build/logs/$target.log and $findings/" >&2
  fi
done

printf '%-22s %8s %10s %8s %8s %9s\n' target seconds runs execs/s corpus findings
for target in $targets; do
  printf '%-22s %8s %10s %8s %8s %9s\n' "$target" "$seconds" "${runs[$target]}" "${rate[$target]}" "${corpus[$target]}" \
    "${found[$target]}"
done
exit $status
