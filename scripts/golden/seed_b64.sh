#!/usr/bin/env bash
# Golden values for em-b64: the sha256 of the input.json that the seed's Python script (appendix "이미지 바이트 배열
# 변환 파이썬 코드" of ../shared/seed/easymaker-algorithm-guide.ko.md) writes for each image of tests/cli/test_b64.sh.
# The script is read out of the seed document at run time into a temporary folder and run with python3; nothing of
# it is kept in the tree. Prints "SHA256  IMAGE_NAME" lines, which are tests/golden/b64/seed_b64.sha256:
#   scripts/golden/seed_b64.sh > tests/golden/b64/seed_b64.sha256
# Environment: EM_SHARED (default ../shared next to the checkout), for the seed document and data/images/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${EM_SHARED:-$root/../shared}
seed=$shared/seed/easymaker-algorithm-guide.ko.md
images=("$root/tests/golden/image/rgb_37x23.png" "$root/tests/golden/image/rgb_37x23.jpg"
        "$shared/data/images/chelsea.png" "$shared/data/images/camera.png")

[[ -f $seed ]] || { echo "seed_b64.sh: $seed: no such file (set EM_SHARED)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/seed-b64.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The first fenced code block after the appendix heading, without its fences.
awk '/^## 부록: 이미지 바이트 배열 변환 파이썬 코드/ { appendix = 1; next }
     appendix && /^```/ { if (inside) exit; inside = 1; next }
     inside { print }' "$seed" >"$tmp/seed_b64.py"
grep -q 'base64.b64encode' "$tmp/seed_b64.py" && grep -q "open('input.json', 'w')" "$tmp/seed_b64.py" ||
  { echo "seed_b64.sh: no base64 -> input.json script in the appendix of $seed" >&2; exit 1; }

for img in "${images[@]}"; do
  [[ -f $img ]] || { echo "seed_b64.sh: $img: no such file" >&2; exit 1; }
  rm -f "$tmp/input.json"
  (cd "$tmp" && python3 seed_b64.py "$img")
  sum=$(sha256sum "$tmp/input.json")
  printf '%s  %s\n' "${sum%% *}" "$(basename "$img")"
done
