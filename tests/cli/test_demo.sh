#!/usr/bin/env bash
# scripts/demo.sh, the README's quick start, end to end from a copy of the checkout at a path of more than 300
# characters, with the tools under test (EM_DEMO_BIN) on a small setting: it exits 0 and its stdout ends with
# em-predict's response. The validation images' path list is made to pass the 64 KiB pipe buffer, where the demo's
# old `find | sort | head -n 1` died of SIGPIPE under pipefail (exit 141).
source "$(dirname "$0")/lib.sh"
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] ||
  skip "Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
command -v jq >/dev/null || skip "jq is not installed"

# The copy: tracked and untracked-but-not-ignored files (a git checkout), else everything but build*/, out/, .git.
mkdir -p "$EM_TMP"
parent=$(mktemp -d "$(cd "$EM_TMP" && pwd)/demo.XXXXXX")
trap 'rm -rf "$T" "$parent"' EXIT
copy=$parent
while ((${#copy} <= 300)); do copy+=/a-checkout-at-a-long-path; done
copy+=/emkit
mkdir -p "$copy"
if git -C "$EM_SOURCE" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$EM_SOURCE" ls-files -z --cached --others --exclude-standard >"$T/listed"
  while IFS= read -r -d '' f; do  # a file deleted in the work tree but not in the index is still listed
    if [[ -e $EM_SOURCE/$f || -L $EM_SOURCE/$f ]]; then printf '%s\0' "$f"; fi
  done <"$T/listed" >"$T/files"
  tar -C "$EM_SOURCE" --null -T "$T/files" -cf - | tar -C "$copy" -xf -
else
  tar -C "$EM_SOURCE" --exclude='./build*' --exclude=./out --exclude=./.git -cf - . | tar -C "$copy" -xf -
fi
[[ -x $copy/scripts/demo.sh && ! -e $copy/build ]] && pass "checkout copied to a path of ${#copy} characters" ||
  fail "the copy at $copy lacks scripts/demo.sh or has a build folder"

# setup.sh runs as in the quick start; it must find everything installed (stubs stand in for apt-get and sudo).
mkdir -p "$T/stub"
for cmd in apt-get sudo; do printf '#!/bin/sh\ntouch "%s/wants-packages"\nexit 1\n' "$T" >"$T/stub/$cmd"; done
chmod +x "$T/stub/apt-get" "$T/stub/sudo"

# 250 validation images x ~360 characters of path: ~90 KB of paths. ResNet-50 (the default) on 40 training images,
# 1 epoch.
start=$SECONDS
set +e
env -u EM_DEMO_DIR PATH="$T/stub:$PATH" EM_DEMO_BIN="$EM_BIN" EM_DEMO_TRAIN=40 \
  EM_DEMO_VALIDATION=250 EM_DEMO_EPOCHS=1 bash "$copy/scripts/demo.sh" >"$T/demo.out" 2>"$T/demo.err"
rc=$?
set -e
seconds=$((SECONDS - start))
[[ ! -e $T/wants-packages ]] || skip "scripts/setup.sh wants to install packages; run it once first"
if [[ $rc -eq 0 ]]; then pass "scripts/demo.sh exits 0 ($seconds s)"
else fail "scripts/demo.sh exited $rc after $seconds s; stderr ends: $(tail -c 1500 "$T/demo.err")"; fi

demo=$copy/out/demo
find "$demo/fashion-mnist/validation" -name '*.png' >"$T/paths"
bytes=$(stat -c %s "$T/paths")
((bytes > 65536)) && pass "the validation path list is $bytes bytes, past the 64 KiB pipe buffer" ||
  fail "the validation path list is only $bytes bytes: the setting no longer exercises the pipe buffer"
sort "$T/paths" >"$T/sorted"
read -r first <"$T/sorted"
grep -qF "== em-b64 $first | em-predict" "$T/demo.err" && pass "it predicts the first validation image in sorted order" ||
  fail "the predicted image is not $first"

tail -n 1 "$T/demo.out" >"$T/answer.json"
jq -e 'type == "array" and length == 3 and all(.[]; (.score | type == "number") and (.label | type == "string"))
       and .[0].score >= .[1].score and .[1].score >= .[2].score' "$T/answer.json" >/dev/null 2>&1 &&
  pass "stdout ends with a prediction response: 3 {score, label}, best first" ||
  fail "stdout's last line is no prediction response: $(head -c 400 "$T/answer.json")"
jq -e '.accuracy | type == "number"' "$demo/metrics.json" >/dev/null && pass "metrics.json has the accuracy" ||
  fail "metrics.json: $(head -c 300 "$demo/metrics.json" 2>&1)"
for f in "$demo/eval-plots/confusion_matrix.png" "$demo/prediction.png" "$demo/run/plots/results.png"; do
  [[ $(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] && pass "the demo drew ${f#"$demo"/}" ||
    fail "the demo did not draw ${f#"$demo"/}"
done
[[ ! -e $copy/build ]] && pass "EM_DEMO_BIN: nothing was built" || fail "the demo built into $copy/build"
finish
