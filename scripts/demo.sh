#!/usr/bin/env bash
# The quick start's main job on a fresh Debian 12 machine: installs what is missing, builds, writes Fashion-MNIST
# (Debian's dataset-fashion-mnist) into the seed's classification layout, validates it, trains ResNet-50 briefly,
# evaluates it (with pictures: the confusion matrix, the run's curves) and predicts one image through
# em-b64 | em-predict, drawing the answer. A few minutes on 2 cores.
# Environment: EM_DEMO_DIR (default out/demo), EM_DEMO_TRAIN / EM_DEMO_VALIDATION (images, default 6000 / 1000),
# EM_DEMO_EPOCHS (default 2), EM_DEMO_BIN (a folder of prebuilt emkit tools: the build is skipped and those are
# used; default: build into build/ and use build/bin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
if [[ -n ${EM_DEMO_BIN:-} ]]; then
  bin=$EM_DEMO_BIN
  for tool in em-validate em-train em-eval em-b64 em-predict; do
    [[ -x $bin/$tool ]] || { echo "demo: EM_DEMO_BIN=$bin has no executable $tool" >&2; exit 1; }
  done
else
  "$root/scripts/build.sh" "$root/build"
  bin=$root/build/bin
fi
demo=${EM_DEMO_DIR:-$root/out/demo}
data=$demo/fashion-mnist
run=$demo/run
mkdir -p "$demo"

step() { printf '\n== %s\n' "$*" >&2; }

if [[ ! -f $data/.complete ]]; then
  step "Fashion-MNIST -> $data (train/{label}/*.png, validation/{label}/*.png)"
  rm -rf "$data"
  python3 "$root/scripts/fashion_mnist_to_folder.py" --train "${EM_DEMO_TRAIN:-6000}" \
    --validation "${EM_DEMO_VALIDATION:-1000}" "$data"
  touch "$data/.complete"
fi

step "em-validate --algo classification $data"
"$bin/em-validate" --algo classification "$data"

step "em-train: ResNet-50 at 28x28, AdamW lr 1e-3, ${EM_DEMO_EPOCHS:-2} epochs"
"$bin/em-train" --algo classification --data "$data" --output_dir "$run" --overwrite_output_dir \
  --learning_rate 1e-3 --num_train_epochs "${EM_DEMO_EPOCHS:-2}" --logging_steps 50 --save_steps 250 >/dev/null

step "em-eval --model $run/model --data $data"
"$bin/em-eval" --model "$run/model" --data "$data" --predictions "$demo/predictions.jsonl" --plots "$demo/eval-plots" |
  tee "$demo/metrics.json"

# The first validation image, by a sorted glob: `find | sort | head -n 1` would die of SIGPIPE under pipefail once
# the path list passes the 64 KiB pipe buffer (1,000 images at a checkout path of a dozen characters).
images=("$data"/validation/*/*.png)
image=${images[0]}
[[ -f $image ]] || { echo "demo: no PNG in $data/validation/*/" >&2; exit 1; }
step "em-b64 $image | em-predict --model $run/model --top_k 3 --draw $demo/prediction.png"
"$bin/em-b64" "$image" | "$bin/em-predict" --model "$run/model" --top_k 3 --draw "$demo/prediction.png"

step "done: run directory $run (curves: $run/plots/results.png; tensorboard --logdir $run/runs), metrics $demo/metrics.json"
echo "pictures: $demo/eval-plots/confusion_matrix.png, $demo/prediction.png" >&2
