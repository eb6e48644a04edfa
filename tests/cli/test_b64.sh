#!/usr/bin/env bash
# em-b64 writes exactly the seed script's bytes with -o (their sha256 in tests/golden/b64/seed_b64.sha256, made by
# scripts/golden/seed_b64.sh from the seed document), the same plus a final newline on stdout, several files in
# order, and warns (exit 0) for a file that is no image.
source "$(dirname "$0")/lib.sh"
B64=$EM_BIN/em-b64
command -v python3 >/dev/null || skip "python3 is not installed"

images=("$EM_SOURCE/tests/golden/image/rgb_37x23.png" "$EM_SOURCE/tests/golden/image/rgb_37x23.jpg")
[[ -d ${EM_SHARED:-/nonexistent}/data/images ]] && images+=("$EM_SHARED/data/images/chelsea.png" "$EM_SHARED/data/images/camera.png")

golden=$EM_SOURCE/tests/golden/b64/seed_b64.sha256
[[ -f $golden ]] || { fail "$golden is missing (scripts/golden/seed_b64.sh makes it)"; finish; }
declare -A want=()
while read -r sum name; do want[$name]=$sum; done <"$golden"
sha256_of() { local line; line=$(sha256sum "$1"); echo "${line%% *}"; }
printf '\n' >"$T/newline"

for img in "${images[@]}"; do
  name=$(basename "$img")
  [[ -n ${want[$name]:-} ]] || { fail "$golden has no line for $name"; continue; }
  expect_exit 0 "em-b64 -o on $name" -- "$B64" "$img" -o "$T/ours-$name.json"
  got=$(sha256_of "$T/ours-$name.json")
  if [[ $got == "${want[$name]}" ]]; then pass "-o bytes are the seed script's for $name (sha256 ${got:0:12}...)"
  else fail "-o output of $name has sha256 $got, the seed script's is ${want[$name]}"; fi
  expect_exit 0 "em-b64 to stdout on $name" -- "$B64" "$img"
  [[ ! -s "$T/err" ]] || fail "a real image gave stderr output: $(head -c 300 "$T/err")"
  size=$(stat -c %s "$T/out")
  head -c "$((size > 0 ? size - 1 : 0))" "$T/out" >"$T/body"
  tail -c 1 "$T/out" >"$T/last"
  if [[ $(sha256_of "$T/body") == "${want[$name]}" ]] && cmp -s "$T/last" "$T/newline"; then
    pass "stdout is the seed's bytes plus a newline for $name"
  else fail "stdout differs from the seed's bytes + newline for $name"; fi
  cp "$T/out" "$T/stdout-$name.json"
done

# stdin as '-'.
expect_exit 0 "em-b64 - reads stdin" -- bash -c "'$B64' - < '${images[0]}'"
cmp -s "$T/stdout-$(basename "${images[0]}").json" "$T/out" && pass "stdin gives the same request" ||
  fail "stdin request differs"

# Several files: one instance each, in order (checked by decoding with python3).
expect_exit 0 "em-b64 with two files" -- "$B64" "${images[0]}" "${images[1]}"
python3 - "$T/out" "${images[0]}" "${images[1]}" <<'PY' && pass "two instances, in order" || fail "two-file request"
import base64, json, sys
req = json.load(open(sys.argv[1]))
assert [base64.b64decode(i["data"]) for i in req["instances"]] == [open(p, "rb").read() for p in sys.argv[2:]]
PY

# Not an image: warned about, encoded anyway, exit 0.
printf 'just text\n' >"$T/notes.png"
expect_exit 0 "a text file is still encoded" -- "$B64" "$T/notes.png"
expect_stderr 'warning: .*notes.png: not an image \(unknown format: text\); encoding it anyway' "warning names the file"

# Errors: a missing file (1), no arguments / unknown flag (2).
expect_exit 1 "a missing file is an error" -- "$B64" "$T/absent.png"
expect_stderr 'em-b64: error: .*absent.png: cannot open' "error names the missing file"
expect_exit 2 "no image is a usage error" -- "$B64"
expect_exit 2 "an unknown flag is a usage error" -- "$B64" --bogus "${images[0]}"
# Encoding runs on one thread: em-b64 offers no --threads that would do nothing.
expect_exit 2 "em-b64 has no --threads" -- "$B64" --threads 2 "${images[0]}"
expect_exit 0 "em-b64 --help" -- "$B64" --help
grep -q -- '--threads' "$T/out" && fail "em-b64 --help lists --threads" || pass "em-b64 --help lists no --threads"
finish
