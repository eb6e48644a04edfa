#!/usr/bin/env bash
# em-validate --preview OUT (docs/em-validate.md#pictures---preview): the report on stdout and the exit code are those
# of a run without it; the contact sheets show each annotation where it is (a detection box's edges at the scaled
# x, y, x + w, y + h; a seg map's overlay on exactly its pixels, compared with the same sheet of an all-ignore map);
# a dataset with problems still gets its pictures, a split that cannot be listed none; '-' is a usage error; the
# real CamVid, COCO and Fashion-MNIST data draw without error.
source "$(dirname "$0")/lib.sh"
V=$EM_BIN/em-validate
py=/usr/bin/python3
$py -c 'import PIL' 2>/dev/null || skip "Debian's python3-pil is not installed (scripts/setup.sh installs it)"
[[ -n ${EM_SHARED:-} && -d $EM_SHARED/data ]] || skip "../shared/data is absent"

# The class palette's first colours (lib/em/draw/color.cpp, Ultralytics' order) and the test images' one colour.
RED="255,56,56" PINK="255,157,151" BG="40,90,160"

# pix.py: PNG facts with Pillow.
#   solid F W H R,G,B                 writes a W x H image of one colour
#   size F                            "W H"
#   bbox F R,G,B                      "x0 y0 x1 y1" of the pixels of that exact colour (x1, y1 exclusive), or "none"
#   at F X Y                          "R,G,B" of one pixel
#   diff A B                          "x0 y0 x1 y1 N R,G,B" over A's area: the bbox of the pixels that differ, how many
#                                     differ, and the colours B has there ("none" when none differs)
#   has F R,G,B                       exit 0 when some pixel has that exact colour
cat >"$T/pix.py" <<'PY'
import sys
from PIL import Image, ImageChops
cmd, args = sys.argv[1], sys.argv[2:]
rgb = lambda s: tuple(int(v) for v in s.split(","))
if cmd == "solid":
    Image.new("RGB", (int(args[1]), int(args[2])), rgb(args[3])).save(args[0])
elif cmd == "size":
    print(*Image.open(args[0]).size)
elif cmd == "bbox":
    im = Image.open(args[0]).convert("RGB")
    want = rgb(args[1])
    mask = Image.new("L", im.size)
    mask.putdata([255 if p == want else 0 for p in im.getdata()])
    box = mask.getbbox()
    print(*box) if box else print("none")
elif cmd == "at":
    print(",".join(map(str, Image.open(args[0]).convert("RGB").getpixel((int(args[1]), int(args[2]))))))
elif cmd == "diff":
    a = Image.open(args[0]).convert("RGB")
    b = Image.open(args[1]).convert("RGB").crop((0, 0) + a.size)
    d = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
    box = d.getbbox()
    if not box:
        print("none")
    else:
        n = sum(1 for v in d.getdata() if v)
        colours = {p for p, m in zip(b.getdata(), d.getdata()) if m}
        print(*box, n, ";".join(",".join(map(str, c)) for c in sorted(colours)))
elif cmd == "has":
    sys.exit(0 if rgb(args[1]) in set(Image.open(args[0]).convert("RGB").getdata()) else 1)
PY
pix() { $py "$T/pix.py" "$@"; }
# expect_pixel F X Y R,G,B DESCRIPTION
expect_pixel() {
  local got; got=$(pix at "$1" "$2" "$3")
  [[ $got == "$4" ]] && pass "$5" || fail "$5: pixel ($2, $3) of $(basename "$1") is $got, expected $4"
}
# same_run DESCRIPTION -- ARGS...: em-validate ARGS with and without --preview $T/p (and the flags in the array
# preview_flags) give the same exit code and stdout.
preview_flags=()
same_run() {
  local what=$1; shift 2
  set +e
  "$V" "$@" >"$T/plain.out" 2>/dev/null; local want=$?
  rm -rf "$T/p"
  "$V" "$@" --preview "$T/p" "${preview_flags[@]}" >"$T/out" 2>"$T/err"; local got=$?
  set -e
  if [[ $got -eq $want ]] && cmp -s "$T/plain.out" "$T/out"; then pass "$what: exit $got and stdout as without --preview"
  else fail "$what: exit $got (without --preview $want), stdout $(cmp "$T/plain.out" "$T/out" 2>&1)"; fi
}

# ---- detection: one 64x48 image, one box [16, 8, 32, 16] of category 7 "gadget" (train's second id: colour 1) ----
D=$T/det
mkdir -p "$D"/{train,validation}
pix solid "$D/train/a.png" 64 48 "$BG"
pix solid "$D/validation/b.png" 64 48 "$BG"
pix solid "$D/validation/c.png" 64 48 "$BG"
cat >"$D/train/_annotations.coco.json" <<'JSON'
{"categories": [{"id": 3, "name": "widget"}, {"id": 7, "name": "gadget"}],
 "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [16, 8, 32, 16], "area": 512, "iscrowd": 0}]}
JSON
cat >"$D/validation/_annotations.coco.json" <<'JSON'
{"categories": [{"id": 3, "name": "widget"}, {"id": 7, "name": "gadget"}],
 "images": [{"id": 1, "file_name": "b.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "c.png", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 4, 20, 30], "area": 600, "iscrowd": 0},
                 {"id": 2, "image_id": 2, "category_id": 7, "bbox": [30, 20, 30, 20], "area": 600, "iscrowd": 0}]}
JSON
same_run "a valid detection dataset" -- --algo detection "$D"
expect_stderr "preview: wrote $T/p/train.png, $T/p/validation.png, $T/p/instances_per_class.png" \
  "  ... a log line on stderr names the files written"
# The 64x48 image fills detection's 384-px cell at scale 6: the tile is where the image's colour is (its corners are
# untouched).
read -r tx0 ty0 tx1 ty1 <<<"$(pix bbox "$T/p/train.png" "$BG")"
if (( tx1 - tx0 == 384 && ty1 - ty0 == 288 )); then pass "the train sheet holds the image as a 384x288 tile"
else fail "train tile at $tx0 $ty0 $tx1 $ty1, expected 384x288"; fi
# The box in the tile: [96, 48) x [288, 144), a 2-px frame in colour 1; outside and inside it, the image.
bx0=$((tx0 + 96)) by0=$((ty0 + 48)) bx1=$((tx0 + 288)) by1=$((ty0 + 144)) mid=$((ty0 + 96)) cx=$((tx0 + 192))
expect_pixel "$T/p/train.png" "$bx0" "$mid" "$PINK" "the box's left edge is at x = 16 (scaled), in its category's colour"
expect_pixel "$T/p/train.png" $((bx0 - 1)) "$mid" "$BG" "  ... and not a pixel further left"
expect_pixel "$T/p/train.png" $((bx1 - 1)) "$mid" "$PINK" "the right edge is at x + w = 48, not at w = 32"
expect_pixel "$T/p/train.png" "$bx1" "$mid" "$BG" "  ... and not a pixel further right"
expect_pixel "$T/p/train.png" "$cx" $((by1 - 1)) "$PINK" "the bottom edge is at y + h = 24 (x and y not swapped)"
expect_pixel "$T/p/train.png" "$cx" "$by1" "$BG" "  ... and not a pixel further down"
expect_pixel "$T/p/train.png" "$cx" "$by0" "$PINK" "the top edge is at y = 8"
expect_pixel "$T/p/train.png" "$cx" "$mid" "$BG" "the box's inside is the image"
# Bars: one series per split in the palette's order (train, validation).
pix has "$T/p/instances_per_class.png" "$RED" && pix has "$T/p/instances_per_class.png" "$PINK" &&
  pass "instances_per_class.png has a train and a validation series" || fail "instances_per_class.png lacks a series' colour"

# Problems: a validation image that does not decode is left out of its sheet (one tile, not two); a test split with
# invalid JSON cannot be listed and gets no sheet. The exit code stays 1, the pictures are still written.
head -c 50 "$D/validation/c.png" >"$T/cut.png" && mv "$T/cut.png" "$D/validation/c.png"
mkdir -p "$D/test" && echo '{"images": [' >"$D/test/_annotations.coco.json"
same_run "a detection dataset with problems" -- --algo detection "$D"
[[ -f $T/p/train.png && -f $T/p/validation.png && -f $T/p/instances_per_class.png && ! -e $T/p/test.png ]] &&
  pass "  ... still gets its pictures, except for the split that cannot be listed" || fail "pictures: $(ls "$T/p")"
expect_stderr "test: no contact sheet" "  ... which stderr names"
read -r vx0 vy0 vx1 vy1 <<<"$(pix bbox "$T/p/validation.png" "$BG")"
(( vx1 - vx0 == 384 )) && pass "  ... the image that does not decode is left out (one tile)" ||
  fail "validation sheet: the image colour spans x $vx0..$vx1 (two tiles?)"

# ---- segmentation: the overlay changes exactly the masked pixels ----
S=$T/seg
mkdir -p "$S"/{train,validation}/{images,annotations} "$S/resources"
echo '{"0": "road", "1": "car"}' >"$S/resources/id2label.json"
for split in train validation; do
  pix solid "$S/$split/images/a.png" 64 48 "$BG"
  echo '[{"image": "images/a.png", "seg_map": "annotations/a.png"}]' >"$S/$split/$split.json"
done
# seg_map F LABEL: 255 (ignore) everywhere, LABEL in [16, 48) x [8, 24).
seg_map() {
  $py -c 'import sys; from PIL import Image
im = Image.new("L", (64, 48), 255)
if sys.argv[2] != "none": im.paste(int(sys.argv[2]), (16, 8, 48, 24))
im.save(sys.argv[1])' "$1" "$2"
}
seg_map "$S/train/annotations/a.png" none; seg_map "$S/validation/annotations/a.png" 0
same_run "segmentation: an all-ignore seg map" -- --algo segmentation "$S"
cp "$T/p/train.png" "$T/unannotated.png"
seg_map "$S/train/annotations/a.png" 1
same_run "segmentation: a seg map with class 1 in a rectangle" -- --algo segmentation "$S"
read -r tx0 ty0 tx1 ty1 <<<"$(pix bbox "$T/unannotated.png" "$BG")"
# Class 1 (colour 1) blended half over the image, at the rectangle scaled by 4 into the tile, and nowhere else (the
# legend lies to the right of the grid, outside the unannotated sheet's area).
want="$((tx0 + 64)) $((ty0 + 32)) $((tx0 + 192)) $((ty0 + 96)) $((128 * 64)) 148,124,156"
got=$(pix diff "$T/unannotated.png" "$T/p/train.png")
[[ $got == "$want" ]] && pass "the overlay changes exactly the masked pixels, in the class's colour" ||
  fail "overlay: differs at '$got', expected '$want' (x0 y0 x1 y1 pixels colour)"
(( $(pix size "$T/p/train.png" | cut -d' ' -f1) > $(pix size "$T/unannotated.png" | cut -d' ' -f1) )) &&
  pass "  ... with a legend beside the grid" || fail "no legend beside the sheet"

# ---- usage ----
expect_exit 2 "--preview - is a usage error" -- "$V" --algo segmentation "$S" --preview -
expect_stderr "stdout carries the report" "  ... saying why"
[[ ! -s $T/out ]] && pass "  ... before any report" || fail "--preview -: stdout has $(head -c 200 "$T/out")"
expect_exit 2 "--preview_images without --preview" -- "$V" --algo segmentation "$S" --preview_images 4
expect_exit 2 "--preview_images 0" -- "$V" --algo segmentation "$S" --preview "$T/p0" --preview_images 0
: >"$T/a-file"
expect_exit 1 "--preview naming a file" -- "$V" --algo segmentation "$S" --preview "$T/a-file"
expect_stderr "a-file: cannot create the preview folder" "  ... names it"
expect_exit 1 "another algorithm's layout: the report's one problem" -- "$V" --algo classification "$S" --preview "$T/none"
[[ ! -e $T/none ]] && pass "  ... and no pictures" || fail "pictures for a folder of another layout: $(ls "$T/none")"

# ---- real data ----
# sheet_size F COLUMNS ROWS CELL: a contact sheet at least COLUMNS x ROWS cells of CELL px wide and high.
sheet_size() {
  local w h; read -r w h <<<"$(pix size "$1")"
  (( w >= $2 * $4 && h >= $3 * $4 )) && pass "$(basename "$(dirname "$1")")/$(basename "$1"): ${w}x$h" ||
    fail "$1: ${w}x$h, expected at least $(($2 * $4))x$(($3 * $4))"
}
same_run "the real camvid-mini" -- --algo segmentation "$EM_SHARED/data/camvid-mini"
cp -r "$T/p" "$T/camvid"
sheet_size "$T/camvid/train.png" 4 4 256  # 16 of 40
for split in validation test; do sheet_size "$T/camvid/$split.png" 4 3 256; done  # all 12
preview_flags=(--preview_images 2)
same_run "the real coco-mini" -- --algo detection "$EM_SHARED/data/coco-mini"
cp -r "$T/p" "$T/coco"
for split in train validation test; do sheet_size "$T/coco/$split.png" 2 1 384; done
# coco-mini's first category by id is train's label 0: its boxes are in the palette's first colour.
pix has "$T/coco/train.png" "$RED" && pass "  ... boxes drawn in category colours" || fail "coco-mini: no box of colour 0"
if [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  make_fashion_dataset "$T/fashion" 40 20
  preview_flags=(--preview_images 10)
  same_run "Fashion-MNIST" -- --algo classification "$T/fashion"
  cp -r "$T/p" "$T/fashion-preview"
  for split in train validation; do sheet_size "$T/fashion-preview/$split.png" 4 3 192; done
else
  echo "note: Debian's dataset-fashion-mnist is not installed; the Fashion-MNIST preview is not drawn"
fi
[[ -n ${EM_KEEP_TMP:-} ]] && echo "pictures kept in $T"
finish
