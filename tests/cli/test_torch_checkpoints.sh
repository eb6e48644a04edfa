#!/usr/bin/env bash
# PyTorch checkpoints through the real tools: em-train --init with a torchvision .pth (names mapped to HF's), a model
# folder holding only pytorch_model.bin predicts exactly as the same folder with model.safetensors, safetensors wins
# when both are there (transformers' order), and files that are not weights are refused with exit 1 and the reason.
source "$(dirname "$0")/lib.sh"
G=$EM_SOURCE/tests/golden/torch_pickle

# --init with a torchvision ResNet .pth (5 classes; Fashion-MNIST has 10, so the head is re-initialised).
data=$T/fashion
make_fashion_dataset "$data" 20 10
expect_exit 0 "em-train --init torchvision .pth" -- "$EM_BIN/em-train" --algo classification --data "$data" \
  --model_config "$G/torchvision_resnet_bottleneck.json" --init "$G/torchvision_resnet_bottleneck.pth" \
  --output_dir "$T/run" --threads 1 --num_workers 1 --per_device_train_batch_size 10 --num_train_epochs 1
expect_stderr "a torchvision ResNet state dict: 122 of its 122 tensors renamed to HF ResNet's names" \
  "the torchvision names are mapped, and the log says so"
expect_stderr "loaded [0-9]+ of [0-9]+ model tensors" "--init reports what it loaded"
expect_stderr "classifier\.1\.weight \[10, 32\] \(checkpoint \[5, 32\]\)" "the 5-class head is re-initialised for 10 labels"
model=$T/run/model
[[ -f $model/model.safetensors ]] || { fail "em-train wrote no model folder"; finish; }

# The same folder with pytorch_model.bin (torch.save of the state dict, as transformers writes it) instead.
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "python3-torch is not installed: the pytorch_model.bin folder checks are skipped"
else
  bin_model=$T/bin_model
  mkdir -p "$bin_model"
  cp "$model/config.json" "$model/preprocessor_config.json" "$bin_model/"
  /usr/bin/python3 - "$model/model.safetensors" "$bin_model/pytorch_model.bin" <<'PY'
import collections, json, struct, sys
import numpy as np, torch
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}
state = collections.OrderedDict()
for name, e in header.items():
    if name == "__metadata__":
        continue
    begin, end = e["data_offsets"]
    state[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype=dtypes[e["dtype"]]).copy().reshape(e["shape"]))
torch.save(state, sys.argv[2])
PY
  images=$(ls "$data"/validation/*/*.png | head -n 4)
  # shellcheck disable=SC2086
  expect_exit 0 "em-predict on the model.safetensors folder" -- "$EM_BIN/em-predict" --model "$model" --threads 1 $images
  cp "$T/out" "$T/safetensors.jsonl"
  # shellcheck disable=SC2086
  expect_exit 0 "em-predict on a folder with only pytorch_model.bin" -- "$EM_BIN/em-predict" --model "$bin_model" \
    --threads 1 $images
  if cmp -s "$T/out" "$T/safetensors.jsonl" && [[ -s $T/out ]]; then pass "pytorch_model.bin predicts the same bytes"
  else fail "pytorch_model.bin predictions differ: $(head -c 300 "$T/out") vs $(head -c 300 "$T/safetensors.jsonl")"; fi

  # Both files: model.safetensors is read first, as transformers does (a broken .bin beside it is never opened).
  both=$T/both
  cp -r "$model" "$both"
  printf 'not a pickle' >"$both/pytorch_model.bin"
  # shellcheck disable=SC2086
  expect_exit 0 "em-predict on a folder with both weight files" -- "$EM_BIN/em-predict" --model "$both" --threads 1 $images
  if cmp -s "$T/out" "$T/safetensors.jsonl"; then pass "model.safetensors wins over pytorch_model.bin"
  else fail "the folder with both files predicts otherwise"; fi
fi

# Files that are not weights a model can use: refused with exit 1, naming the file and the reason.
legacy=$T/legacy
mkdir -p "$legacy"
cp "$model/config.json" "$model/preprocessor_config.json" "$legacy/"
cp "$G/legacy.pth" "$legacy/pytorch_model.bin"
expect_exit 1 "em-predict on a legacy-format pytorch_model.bin" -- "$EM_BIN/em-predict" --model "$legacy" \
  --threads 1 "$G/../image/rgb_37x23.png"
expect_stderr "pytorch_model\.bin: a PyTorch checkpoint in the legacy format .*torch\.save\(torch\.load" \
  "the legacy format is refused with how to re-save it"
expect_exit 1 "em-train --init with a checkpoint that pickles numpy" -- "$EM_BIN/em-train" --algo classification \
  --data "$data" --model_config "$G/torchvision_resnet_bottleneck.json" --init "$G/numpy.pth" --output_dir "$T/run2" \
  --threads 1 --num_workers 1 --num_train_epochs 1
expect_stderr "numpy\.pth: not a weights file: it pickles numpy\.core\.multiarray\._reconstruct" \
  "a forbidden global is refused naming it"
expect_exit 1 "em-train --init with a TorchScript archive" -- "$EM_BIN/em-train" --algo classification \
  --data "$data" --model_config "$G/torchvision_resnet_bottleneck.json" --init "$G/torchscript.pt" \
  --output_dir "$T/run3" --threads 1 --num_workers 1 --num_train_epochs 1
expect_stderr "a TorchScript archive \(torch\.jit\.save\)" "TorchScript is refused saying what to save instead"
finish
