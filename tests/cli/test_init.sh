#!/usr/bin/env bash
# em-train --init as HF's from_pretrained: the architecture comes from the folder's config.json for every algorithm
# (segmentation's case is in test_train_segmentation.sh), the head is kept for the same labels and left fresh for
# others, a checkpoint of another architecture is refused (exit 2) unless --init_partial, and a folder of another
# model type is refused.
source "$(dirname "$0")/lib.sh"

data=$T/fashion
make_fashion_dataset "$data" 20 10
cfg=$T/tiny.json
write_tiny_resnet_config "$cfg"
common=(--algo classification --threads 1 --num_workers 1 --per_device_train_batch_size 10 --max_steps 2
        --eval_strategy no)

expect_exit 0 "a first run to start from" -- "$EM_BIN/em-train" "${common[@]}" --data "$data" --model_config "$cfg" \
  --output_dir "$T/a"

# 1. No --model_config: the tiny architecture of a/model, every tensor loaded (before: a ResNet-50, 77 of 267).
expect_exit 0 "--init a model folder without --model_config" -- "$EM_BIN/em-train" "${common[@]}" --data "$data" \
  --init "$T/a/model" --output_dir "$T/b"
expect_stderr "architecture from --init's .*a/model/config\.json" "the log says where the architecture came from"
expect_stderr "loaded ([0-9]+) of \1 model tensors" "every model tensor is loaded"
if grep -q "fresh initialisation" "$T/err"; then fail "nothing should stay fresh: $(grep fresh "$T/err")"
else pass "the head is kept: the labels are the same"; fi
same=$(python3 - "$T/a/model/config.json" "$T/b/model/config.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
keys = ["hidden_sizes", "depths", "embedding_size", "layer_type", "id2label"]
print(all(a[k] == b[k] for k in keys))
PY
)
[[ $same == True ]] && pass "the new run's config.json has the --init folder's architecture" ||
  fail "config.json differs from the --init folder's"

# 2. Other labels (one class renamed): same shapes, but the head is left fresh and the log says why.
other=$T/other
cp -r "$data" "$other"
for split in train validation; do mv "$other/$split/Bag" "$other/$split/Backpack"; done
expect_exit 0 "--init with other labels" -- "$EM_BIN/em-train" "${common[@]}" --data "$other" --init "$T/a/model" \
  --output_dir "$T/c"
expect_stderr "labels .* are not the dataset's .*keeps its fresh initialisation" "a head for other labels is not kept"

# 3. Another architecture: exit 2 naming the tensors, unless --init_partial.
expect_exit 2 "--init into another architecture" -- "$EM_BIN/em-train" "${common[@]}" --data "$data" \
  --init "$T/a/model" --model_config resnet-18 --output_dir "$T/d"
expect_stderr "outside the task head .*--init_partial" "the error names the way out"
[[ ! -e $T/d ]] && pass "nothing was written" || fail "the refused run wrote $T/d"
expect_exit 0 "--init_partial allows it" -- "$EM_BIN/em-train" "${common[@]}" --data "$data" --init "$T/a/model" \
  --model_config resnet-18 --init_partial --output_dir "$T/d" --max_steps 1
expect_stderr "with --init_partial: [0-9]+ model tensors outside the task head" "--init_partial warns"
printf '{"init_partial": true, "model_config": "resnet-18"}' >"$T/hp.json"
expect_exit 0 "init_partial in a --hyperparameters file" -- "$EM_BIN/em-train" "${common[@]}" --data "$data" \
  --init "$T/a/model" --hyperparameters "$T/hp.json" --output_dir "$T/e" --max_steps 1

# 4. A folder of another model type.
expect_exit 2 "--algo detection --init a ResNet folder" -- "$EM_BIN/em-train" --algo detection \
  --data "$EM_SHARED/data/coco-mini" --init "$T/a/model" --output_dir "$T/f" --threads 1
expect_stderr 'describes a "resnet" model; --algo detection trains "detr" models' "the error names both types"

# 5. Detection: a tiny DETR run, then --init without --model_config.
coco=$EM_SHARED/data/coco-mini
if [[ -d $coco ]]; then
  dcommon=(--algo detection --data "$coco" --threads 1 --num_workers 1 --image_size 64 --augmentation none
           --per_device_train_batch_size 2 --max_steps 1 --eval_strategy no)
  expect_exit 0 "a first detection run" -- "$EM_BIN/em-train" "${dcommon[@]}" --model_config detr-resnet-18-tiny \
    --output_dir "$T/da"
  expect_exit 0 "detection --init without --model_config" -- "$EM_BIN/em-train" "${dcommon[@]}" \
    --init "$T/da/model" --output_dir "$T/db"
  expect_stderr "architecture from --init's" "detection takes the architecture from --init"
  expect_stderr "loaded ([0-9]+) of \1 model tensors" "every DETR tensor is loaded"
else
  echo "no $coco: the detection --init check is skipped"
fi
finish
