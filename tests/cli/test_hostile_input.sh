#!/usr/bin/env bash
# Hostile input refused at its root, with a message and the right exit code, never a crash or a hang
# (docs/reliability.md): deep and duplicate-key JSON, special files, decompression bombs, paths and links out of the
# dataset, names that are not UTF-8, label ids past 8 bits, absurd config sizes, NaN-making weights and
# normalisation, a second em-train on one run directory, an overwrite over the user's files.
source "$(dirname "$0")/lib.sh"
for tool in em-train em-predict em-validate; do [[ -x $EM_BIN/$tool ]] || skip "$tool is not built"; done
command -v python3 >/dev/null || skip "python3 is not installed"
[[ -n ${EM_SHARED:-} && -d $EM_SHARED/data ]] || skip "../shared/data is absent"

train_tiny_classifier 20 6
mapfile -t imgs < <(find "$data/validation" -name '*.png' | sort | head -n 2)
# expect_exit with a time limit: a hang is a failure, not a stuck test.
bounded() { timeout 60 "$@"; }

# --- JSON: a million levels of nesting (crashed every tool with SIGSEGV), a key given twice.
python3 -c 'print("{\"a\":" * 1000000 + "1" + "}" * 1000000)' >"$T/deep.json"
expect_exit 2 "em-train --hyperparameters with 1e6 nested objects" -- bounded "$EM_BIN/em-train" --algo classification \
  --data "$data" --output_dir "$T/deep-run" --hyperparameters "$T/deep.json"
expect_stderr "nested more than 128 arrays/objects deep" "the message names the nesting limit"
echo '{"seed": 1, "seed": 2}' >"$T/dup.json"
expect_exit 2 "em-train --hyperparameters with a key twice" -- "$EM_BIN/em-train" --algo classification \
  --data "$data" --output_dir "$T/dup-run" --hyperparameters "$T/dup.json"
expect_stderr 'key "seed" appears twice' "the message names the key"
"$EM_BIN/em-b64" "${imgs[0]}" | python3 -c 'import sys; b=sys.stdin.read().strip(); print(b[:-1] + ", \"instances\": []}")' >"$T/dup-request.json"
expect_exit 1 "em-predict: a request with \"instances\" twice" -- "$EM_BIN/em-predict" --model "$model" --threads 1 <"$T/dup-request.json"
expect_stderr 'key "instances" appears twice' "the request's duplicate key is named"
python3 -c 'print("{\"instances\": " + "[" * 100000 + "]" * 100000 + "}")' >"$T/deep-request.json"
expect_exit 1 "em-predict: a request nested 1e5 deep" -- bounded "$EM_BIN/em-predict" --model "$model" <"$T/deep-request.json"
expect_stderr "request: invalid JSON" "the request is refused as invalid JSON"

# --- Special files: a FIFO and a link to /dev/zero named .png neither hang nor fill memory.
mkfifo "$T/fifo.png"
expect_exit 1 "em-predict on a FIFO named .png" -- bounded "$EM_BIN/em-predict" --model "$model" --threads 1 "$T/fifo.png"
expect_stderr "fifo.png: is not a regular file \(a FIFO\)" "the FIFO is named and refused before reading"
ln -s /dev/zero "$T/zero.png"
expect_exit 1 "em-predict on a link to /dev/zero" -- bounded "$EM_BIN/em-predict" --model "$model" --threads 1 "$T/zero.png"
expect_stderr "zero.png: is not a regular file \(a device\)" "the device is refused before reading"

# --- Decompression bombs: a PNG whose header says 20000x20000 is refused from the header; --max_image_pixels.
python3 - "$T/bomb.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
row = zlib.compressobj(9)
body = b"".join(row.compress(b"\0" * 20001) for _ in range(200)) + row.flush()
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
PY
expect_exit 1 "em-predict on a 20000x20000 PNG bomb" -- bounded "$EM_BIN/em-predict" --model "$model" --threads 1 "$T/bomb.png"
expect_stderr "too large: 20000x20000 pixels, limit 178956970 \(--max_image_pixels\)" "refused by PIL's limit"
expect_exit 1 "em-predict --max_image_pixels 100 on a 28x28 image" -- "$EM_BIN/em-predict" --model "$model" \
  --threads 1 --max_image_pixels 100 "${imgs[0]}"
expect_stderr "too large: 28x28 pixels, limit 100" "the flag's limit applies"
expect_exit 0 "em-predict --max_image_pixels 784 on a 28x28 image" -- "$EM_BIN/em-predict" --model "$model" \
  --threads 1 --max_image_pixels 784 "${imgs[0]}"
expect_exit 2 "em-predict --max_image_pixels 0" -- "$EM_BIN/em-predict" --model "$model" --max_image_pixels 0 "${imgs[0]}"

# --- Paths: COCO file_name out of the split folder (.., absolute, a link out).
coco=$T/coco
cp -r "$EM_SHARED/data/coco-mini" "$coco"
chmod -R u+w "$coco"
mkdir -p "$T/outside"
cp "$coco/train/"*.jpg "$T/outside/secret.jpg" 2>/dev/null || cp "$(ls "$coco"/train/*.jpg | head -1)" "$T/outside/secret.jpg"
for bad in "../../outside/secret.jpg" "$T/outside/secret.jpg" "link.jpg"; do
  cp "$EM_SHARED/data/coco-mini/train/_annotations.coco.json" "$coco/train/_annotations.coco.json"
  ln -sf "$T/outside/secret.jpg" "$coco/train/link.jpg"
  python3 - "$coco/train/_annotations.coco.json" "$bad" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["images"][0]["file_name"] = sys.argv[2]; json.dump(d, open(sys.argv[1], "w"))
PY
  expect_exit 1 "em-validate: COCO file_name $bad" -- "$EM_BIN/em-validate" --algo detection "$coco"
  expect_stdout 'images\[0\]\.file_name.*(absolute path|leaves|is a link to)' "the entry and why are named"
done
rm -f "$coco/train/link.jpg"

# --- Classification: an image linked from outside the split; a label folder whose name is not UTF-8.
cls=$T/cls
cp -r "$data" "$cls"
first_label=$(ls "$cls/train" | head -1)
ln -s "$T/outside/secret.jpg" "$cls/train/$first_label/stolen.png"
expect_exit 1 "em-validate: an image linked from outside" -- "$EM_BIN/em-validate" --algo classification "$cls"
expect_stdout 'stolen.png.*is a link to' "the link is named"
expect_exit 1 "em-train refuses the linked image" -- "$EM_BIN/em-train" --algo classification --data "$cls" \
  --output_dir "$T/cls-run" --threads 1
expect_stderr "stolen.png: .*is a link to" "em-train names it"
rm "$cls/train/$first_label/stolen.png"
mv "$cls/train/$first_label" "$cls/train/$(printf 'caf\xe9')"
expect_exit 1 "em-validate: a label folder named in Latin-1" -- "$EM_BIN/em-validate" --algo classification "$cls"
expect_stdout "not valid UTF-8" "the folder is named"
expect_exit 1 "em-train refuses it" -- "$EM_BIN/em-train" --algo classification --data "$cls" --output_dir "$T/cls-run" --threads 1
expect_stderr "not valid UTF-8" "em-train says why"

# --- Segmentation: label ids past 8 bits in id2label.
seg=$T/seg
cp -r "$EM_SHARED/data/camvid-mini" "$seg"
chmod -R u+w "$seg"
python3 - "$seg/resources/id2label.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["300"] = "far"; json.dump(d, open(sys.argv[1], "w"))
PY
expect_exit 1 "em-validate: id2label with id 300" -- "$EM_BIN/em-validate" --algo segmentation "$seg"
expect_stdout 'key \\?"300\\?": expected a label id from 0 to 254' "the id is named with the range"

# --- Model folders: absurd sizes, NaN-making normalisation and weights.
echo '{"model_type": "resnet", "hidden_sizes": [1000000000], "depths": [1], "embedding_size": 8}' >"$T/huge.json"
expect_exit 1 "em-train --model_config with hidden_sizes 1e9" -- bounded "$EM_BIN/em-train" --algo classification \
  --data "$data" --output_dir "$T/huge-run" --model_config "$T/huge.json" --threads 1
expect_stderr "parameters" "refused from the sizes, before allocating"
cp -r "$model" "$T/tiny-std"
python3 - "$T/tiny-std/preprocessor_config.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["image_std"] = [1e-300] * 3; json.dump(d, open(sys.argv[1], "w"))
PY
expect_exit 1 "em-predict with image_std 1e-300" -- "$EM_BIN/em-predict" --model "$T/tiny-std" --threads 1 "${imgs[0]}"
expect_stderr "image_std" "the normalisation fields are named"
cp -r "$model" "$T/nan-model"
python3 - "$T/nan-model/model.safetensors" <<'PY'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
for name, t in header.items():
    if name != "__metadata__" and t["dtype"] == "F32" and "classifier" in name:
        a, b = t["data_offsets"]
        raw[8 + n + a:8 + n + b] = struct.pack("<f", float("nan")) * ((b - a) // 4)
open(sys.argv[1], "wb").write(bytes(raw))
PY
expect_exit 1 "em-predict with NaN weights" -- "$EM_BIN/em-predict" --model "$T/nan-model" --threads 1 "${imgs[0]}"
expect_stderr "non-finite values \(NaN or inf\)" "no NaN score with exit 0"

# --- Run directories: a second em-train on one folder; --overwrite_output_dir over the user's file. The first run
# must outlive the second's start on any machine (it is stopped with SIGINT below): 100000 epochs, not a few seconds.
"$EM_BIN/em-train" --algo classification --data "$data" --model_config "$T/tiny.json" --output_dir "$T/busy" \
  --threads 1 --num_workers 1 --per_device_train_batch_size 2 --num_train_epochs 100000 -q >/dev/null 2>"$T/first.err" &
first=$!
for _ in $(seq 1 300); do [[ -s $T/busy/.emkit.lock ]] && break; sleep 0.1; done
expect_exit 1 "a second em-train on the same output_dir" -- "$EM_BIN/em-train" --algo classification --data "$data" \
  --model_config "$T/tiny.json" --output_dir "$T/busy" --threads 1 --overwrite_output_dir
expect_stderr "another em-train \(pid $first\) is writing this run directory" "refused at once, naming the pid"
kill -0 "$first" 2>/dev/null && pass "the first run goes on" || fail "the first run stopped: $(tail -3 "$T/first.err")"
kill -INT "$first"
wait "$first" || true
echo "mine" >"$T/run/model/NOTES.md"
expect_exit 2 "--overwrite_output_dir with the user's file in model/" -- "$EM_BIN/em-train" --algo classification \
  --data "$data" --model_config "$T/tiny.json" --output_dir "$T/run" --threads 1 --overwrite_output_dir
expect_stderr "NOTES.md was not written by emkit" "the file is named"
[[ -f $T/run/model/NOTES.md && -f $T/run/model/model.safetensors ]] && pass "nothing was removed" ||
  fail "the overwrite removed files"
finish
