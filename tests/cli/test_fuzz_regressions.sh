#!/usr/bin/env bash
# Every input the fuzz targets of fuzz/ found a crash with (tests/golden/fuzz/TARGET/, docs/fuzzing.md) is now refused
# cleanly: (1) in this build, through the tool that reads that kind of input (an image crash: em-validate on a dataset
# holding it must exit 1 naming the file and, where INPUT.expect exists, the reason that file's regex gives, never die
# of a signal; a model folder's config.json or preprocessor_config.json: em-predict); (2) when scripts/fuzz.sh has built
# build-fuzz/, each fuzz target runs over its inputs once under ASan+UBSan and must exit 0. Part (2) is reported as
# skipped without build-fuzz/; the test as a whole skips only when there is nothing to check.
source "$(dirname "$0")/lib.sh"
golden=$EM_SOURCE/tests/golden/fuzz
[[ -d $golden ]] || skip "no $golden"
checked=0

# (1) The real tools of this build. An input named valid_* is a real image that a fix must keep accepting.
shopt -s nullglob
images=()
for f in "$golden"/image/*; do [[ $f == *.expect ]] || images+=("$f"); done
if ((${#images[@]})) && [[ -x $EM_BIN/em-validate ]]; then
  for input in "${images[@]}"; do
    name=$(basename "$input")
    data=$T/image-$name
    mkdir -p "$data/train/a" "$data/train/b" "$data/validation/a" "$data/validation/b"
    for split in train validation; do
      cp "$EM_SOURCE/tests/golden/image/rgb_37x23.png" "$data/$split/a/ok.png"
      cp "$EM_SOURCE/tests/golden/image/rgb_60x40.png" "$data/$split/b/ok.png"
    done
    cp "$input" "$data/train/b/fuzzed.${name##*.}"
    if [[ $name == valid_* ]]; then
      expect_exit 0 "em-validate accepts the real image image/$name" -- \
        "$EM_BIN/em-validate" --algo classification "$data"
      checked=$((checked + 1))
      continue
    fi
    expect_exit 1 "em-validate refuses a dataset holding fuzz input image/$name" -- \
      "$EM_BIN/em-validate" --algo classification "$data"
    expect_stdout "fuzzed\.${name##*.}" "em-validate names the fuzzed file $name"
    if [[ -f $input.expect ]]; then expect_stdout "$(cat "$input.expect")" "em-validate gives the reason for $name"; fi
    checked=$((checked + 1))
  done
fi

# JSON inputs: the tool that reads that file must exit 1 with the reason INPUT.expect gives (stdout or stderr), never
# let another exception or a signal end it. hyperparameters/ is left to part (2) (em-train would start training).
expect_output() {
  if grep -Eq -- "$1" "$T/out" "$T/err"; then pass "$2"; else fail "$2: output lacks /$1/: $(head -c 600 "$T/err")"; fi
}
json_tool_check() {
  local target=$1 input=$2 name data
  name=$(basename "$input")
  data=$T/$target-$name
  case $target in
    classification_jsonl)
      expect_exit 1 "em-metrics refuses $target/$name" -- \
        "$EM_BIN/em-metrics" --algo classification --truth "$input" --pred "$input" ;;
    segmentation_split | id2label)
      mkdir -p "$data/train/images" "$data/train/annotations" "$data/resources"
      cp "$EM_SOURCE/tests/golden/image/rgb_37x23.png" "$data/train/images/a.png"
      printf '[{"image": "images/a.png", "seg_map": "annotations/a.png"}]' >"$data/train/train.json"
      printf '{"0": "background", "1": "thing"}' >"$data/resources/id2label.json"
      if [[ $target == id2label ]]; then cp "$input" "$data/resources/id2label.json"; else cp "$input" "$data/train/train.json"; fi
      expect_exit 1 "em-validate refuses a segmentation dataset with $target/$name" -- \
        "$EM_BIN/em-validate" --algo segmentation "$data" ;;
    model_config)
      # The folder's config.json is read before any weight: nothing else is needed.
      mkdir -p "$data"
      cp "$input" "$data/config.json"
      expect_exit 1 "em-predict refuses a model folder whose config.json is $target/$name" -- \
        "$EM_BIN/em-predict" --model "$data" "$EM_SOURCE/tests/golden/image/rgb_37x23.png" ;;
    preprocessor_config)
      # A real detection folder (DETR reads the DetrImageProcessor form) with this preprocessor_config.json.
      local fixture=${EM_SHARED:-/nonexistent}/fixtures/detr-tiny
      [[ -f $fixture/model.safetensors ]] || { echo "note: no $fixture: $target/$name left to part (2)"; return 0; }
      mkdir -p "$data"
      cp "$fixture/config.json" "$fixture/model.safetensors" "$data/"
      cp "$input" "$data/preprocessor_config.json"
      expect_exit 1 "em-predict refuses a detection model folder whose preprocessor_config.json is $target/$name" -- \
        "$EM_BIN/em-predict" --model "$data" "$EM_SOURCE/tests/golden/image/rgb_37x23.png" ;;
    *) return 0 ;;
  esac
  if [[ -f $input.expect ]]; then expect_output "$(cat "$input.expect")" "the reason for $target/$name is given"; fi
  checked=$((checked + 1))
}
for input in "$golden"/{classification_jsonl,segmentation_split,id2label,model_config,preprocessor_config}/*; do
  [[ $input == *.expect ]] && continue
  target=$(basename "$(dirname "$input")")
  case $target in
    classification_jsonl) tool=em-metrics ;;
    model_config | preprocessor_config) tool=em-predict ;;
    *) tool=em-validate ;;
  esac
  [[ -x $EM_BIN/$tool ]] && json_tool_check "$target" "$input"
done

# (2) The fuzz targets themselves, under the sanitizers (a libFuzzer binary given files runs each once).
fuzz_bin=${EM_FUZZ_BUILD:-$EM_SOURCE/build-fuzz}/fuzz
if [[ -d $fuzz_bin ]]; then
  for dir in "$golden"/*/; do
    target=$(basename "$dir")
    inputs=()
    for f in "$dir"*; do [[ $f == *.expect ]] || inputs+=("$f"); done
    ((${#inputs[@]})) || continue
    if [[ ! -x $fuzz_bin/fuzz_$target ]]; then fail "no fuzz target $fuzz_bin/fuzz_$target for $dir"; continue; fi
    expect_exit 0 "fuzz_$target runs its ${#inputs[@]} crash input(s) cleanly under ASan+UBSan" -- \
      "$fuzz_bin/fuzz_$target" "${inputs[@]}"
    checked=$((checked + 1))
  done
else
  echo "note: $fuzz_bin is absent (scripts/fuzz.sh builds it): the sanitizer half of this test did not run"
fi
((checked)) || skip "neither the tools nor build-fuzz/ to check the fuzz inputs with"
finish
