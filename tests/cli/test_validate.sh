#!/usr/bin/env bash
# em-validate --algo classification: a dataset with one of each problem lists them all (path + reason) and exits 1;
# a clean one exits 0 with a summary; --json puts the same report on stdout as JSON; usage errors exit 2.
source "$(dirname "$0")/lib.sh"
V=$EM_BIN/em-validate
PNG=$EM_SOURCE/tests/golden/image/rgb_37x23.png
JPG=$EM_SOURCE/tests/golden/image/rgb_37x23.jpg
GRAY=$EM_SOURCE/tests/golden/image/gray_29x31.png

# A good dataset: two labels, PNG + JPEG + grayscale, and a test split.
D=$T/good
mkdir -p "$D"/train/{cat,dog} "$D"/validation/{cat,dog} "$D"/test/cat
cp "$PNG" "$D/train/cat/a.png"; cp "$JPG" "$D/train/cat/b.jpg"; cp "$GRAY" "$D/train/dog/c.png"
cp "$PNG" "$D/validation/cat/a.png"; cp "$GRAY" "$D/validation/dog/c.png"; cp "$PNG" "$D/test/cat/t.png"
echo "notes" >"$D/train/README.txt"
expect_exit 0 "a clean dataset is valid" -- "$V" --algo classification "$D"
grep -q '^valid$' "$T/out" && pass "text report ends with 'valid'" || fail "text report: $(cat "$T/out")"
grep -q 'labels: cat, dog' "$T/out" && pass "summary lists the labels" || fail "no label summary: $(cat "$T/out")"
if command -v jq >/dev/null; then
  expect_exit 0 "--json on a clean dataset" -- "$V" --algo classification "$D" --json
  jq -e '.valid == true and .problems == [] and .summary.splits.train.images == 3
         and .summary.splits.test.images == 1 and .summary.channels["1"] == 2' "$T/out" >/dev/null &&
    pass "JSON report: valid, counts per split, channels" || fail "JSON report: $(head -c 800 "$T/out")"
  jq -c . "$T/out" >"$T/indented.json"
  expect_exit 0 "--json --compact" -- "$V" --algo classification "$D" --json --compact
  [[ $(wc -l <"$T/out") -eq 1 ]] && cmp -s <(jq -c . "$T/out") "$T/indented.json" &&
    pass "  ... the same report on one line" || fail "--json --compact: $(head -c 300 "$T/out")"
fi

# The text report is lines and tables for people, not JSON: a column per split, a row per label.
expect_exit 0 "the text report" -- "$V" --algo classification "$D"
if grep -q '[{}]' "$T/out"; then fail "JSON in the text report: $(grep '[{}]' "$T/out" | head -3)"; else pass "  ... has no JSON in it"; fi
expect_stdout '^ +train +validation +test$' "  ... the splits are the columns of a table"
expect_stdout '^      cat +2 +1 +1$' "  ... with a row per label"

# Duplicates by content, whatever the names: D's validation and test images are copies of train's (leakage).
expect_stdout "validation/cat/a.png: same image as $D/train/cat/a.png: leakage from train into validation" \
  "a validation image that is also in train is named with its train copy"
expect_stdout "test/cat/t.png: same image as $D/train/cat/a.png: leakage from train into test" "  ... and a test image"
cp -r "$D" "$T/dups" && cp "$PNG" "$T/dups/train/dog/again.png"
cp "$T/dups/train/cat/b.jpg" "$T/dups/validation/cat/b.jpg" && rm -r "$T/dups/test"
expect_exit 0 "duplicates are warnings" -- "$V" --algo classification "$T/dups"
expect_stdout "train/dog/again.png: same bytes as $T/dups/train/cat/a.png: a duplicate image within train" \
  "a copy within train is named with its first copy"
expect_stdout "dups/validation: identical to $T/dups/train: the same 3 image\(s\), by content" \
  "a validation split that is a copy of train gets one clear warning"
grep -q "leakage from train into validation" "$T/out" && fail "identical splits also listed per image: $(cat "$T/out")" ||
  pass "  ... instead of one per image"
expect_exit 0 "duplicates in the JSON report" -- "$V" --algo classification "$T/dups" --json
jq -e '.summary.duplicate_images == {"train": 1, "train & validation": 3}' "$T/out" >/dev/null &&
  pass "  ... counted in the summary" || fail "duplicate_images: $(jq -c .summary.duplicate_images "$T/out")"

# A broken dataset: every kind of problem once.
B=$T/bad
mkdir -p "$B"/train/{cat,dog,empty} "$B"/validation/{cat,bird}
cp "$PNG" "$B/train/cat/good.png"
: >"$B/train/cat/zero.png"
echo "I am text" >"$B/train/cat/text.png"
head -c 400 "$PNG" >"$B/train/dog/cut.png"
head -c 600 "$JPG" >"$B/train/dog/cut.jpg"
cp "$PNG" "$B/train/dog/ok.png"
cp "$PNG" "$B/train/loose.png"
cp "$PNG" "$B/validation/cat/v.png"
cp "$PNG" "$B/validation/bird/v.png"
expect_exit 1 "a broken dataset is invalid" -- "$V" --algo classification "$B"
check_problem() {  # PATH_SUFFIX REASON_REGEX
  if grep -Eq -- "^  .*$1: $2" "$T/out"; then pass "reports $1"; else fail "no '$1: $2' in: $(cat "$T/out")"; fi
}
check_problem "train/cat/zero.png" "not an image \(zero bytes\)"
check_problem "train/cat/text.png" "not an image \(unknown format: text\)"
check_problem "train/dog/cut.png" "not an image \(truncated PNG\)"
check_problem "train/dog/cut.jpg" "not an image \(truncated JPEG\)"
check_problem "train/empty" "empty label folder"
check_problem "train/loose.png" "image outside a label folder"
check_problem "validation/bird" 'label "bird" is not a train label'
grep -q '^invalid: 7 problem(s)$' "$T/out" && pass "7 problems counted" || fail "verdict line: $(tail -1 "$T/out")"
if command -v jq >/dev/null; then
  expect_exit 1 "--json on a broken dataset" -- "$V" --algo classification "$B" --json
  jq -e '.valid == false and (.problems | length) == 7' "$T/out" >/dev/null &&
    pass "JSON lists the 7 problems" || fail "JSON problems: $(head -c 800 "$T/out")"
fi

# Missing splits and folders.
mkdir -p "$T/nosplits"
expect_exit 1 "no train/validation is invalid" -- "$V" --algo classification "$T/nosplits"
grep -q 'train: missing split folder' "$T/out" && grep -q 'validation: missing split folder' "$T/out" &&
  pass "both missing splits reported" || fail "missing splits: $(cat "$T/out")"
expect_exit 1 "a missing dataset folder is invalid" -- "$V" --algo classification "$T/absent"

# Usage errors.
expect_exit 2 "unknown algo" -- "$V" --algo pose "$D"
expect_exit 1 "a classification folder is not a segmentation dataset" -- "$V" --algo segmentation "$D"
expect_exit 1 "a classification folder is not a detection dataset" -- "$V" --algo detection "$D"
expect_stdout "looks like a classification dataset \(label folders train/cat, train/dog\), not detection: use --algo classification" \
  "  ... the one problem names the layout it looks like"

# Another algorithm's layout that would pass as this one's: a segmentation folder read as classification would have
# two labels, "annotations" and "images". One problem, naming the layout and the --algo to use.
S=$T/seg
for split in train validation; do
  mkdir -p "$S/$split/images" "$S/$split/annotations"
  cp "$PNG" "$S/$split/images/a.png"; cp "$GRAY" "$S/$split/annotations/a.png"
  echo '[{"image": "images/a.png", "seg_map": "annotations/a.png"}]' >"$S/$split/$split.json"
done
expect_exit 1 "a segmentation folder is not a classification dataset" -- "$V" --algo classification "$S"
expect_stdout "seg: looks like a segmentation dataset \(train/images, train/annotations, train/train.json\), not classification: use --algo segmentation" \
  "  ... naming the layout it looks like"
grep -q '^invalid: 1 problem(s)$' "$T/out" && pass "  ... as its one problem" || fail "layout mismatch report: $(cat "$T/out")"
if [[ -d ${EM_SHARED:-}/data/camvid-mini ]]; then
  expect_exit 1 "the real camvid-mini is not a classification dataset" -- "$V" --algo classification "$EM_SHARED/data/camvid-mini" --json
  jq -e '.valid == false and (.problems[0].reason | startswith("looks like a segmentation dataset"))' "$T/out" >/dev/null &&
    pass "  ... the JSON report says it looks like segmentation" || fail "camvid-mini as classification: $(head -c 400 "$T/out")"
fi
expect_exit 2 "missing DIR" -- "$V" --algo classification
expect_exit 0 "--json false (a platform's string boolean) is the text report" -- "$V" --algo classification "$D" --json false
head -n 1 "$T/out" | grep -q "^classification dataset" && pass "  ... text, not JSON" || fail "--json false: $(head -c 200 "$T/out")"
expect_exit 0 "--json true is the JSON report" -- "$V" --algo classification "$D" --json true
jq -e '.algo == "classification"' "$T/out" >/dev/null && pass "  ... JSON" || fail "--json true: $(head -c 200 "$T/out")"
expect_exit 2 "a misspelt flag is a usage error" -- "$V" --algo classification "$D" --jsn
expect_stderr "not expected: --jsn; did you mean --json\?" "  ... suggesting the nearest flag"
expect_exit 2 "a flag far from every known one" -- "$V" --algo classification "$D" --zzzzzzzz
if grep -q "did you mean" "$T/err"; then fail "a suggestion for --zzzzzzzz: $(cat "$T/err")"; else pass "  ... gets no suggestion"; fi
expect_exit 0 "--help" -- "$V" --help
finish
