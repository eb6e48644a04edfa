#!/usr/bin/env bash
# The library's two layers hold: no source in a base area (lib/em/CMakeLists.txt's EM_BASE_AREAS) includes a
# LibTorch header, nor do the files of LibTorch areas that the fuzz build compiles, and the base-layer tools
# (EM_BASE_TOOLS) load no LibTorch library at start (readelf NEEDED), while the model tools do. This is what lets
# em-b64, em-validate and em-metrics start in milliseconds (and the fuzz build stay cheap).
# The draw layer (EM_DRAW_AREAS) holds no LibTorch header either: LibTorch-free tools draw with it.
source "$(dirname "$0")/lib.sh"
command -v readelf >/dev/null || skip "readelf (binutils) is not installed"

cmake_list() {  # the words of set(NAME ...) in a CMakeLists.txt
  sed -n "s/^set($1 \([^\$]*\))$/\1/p" "$2" | head -n 1
}
base_areas=$(cmake_list EM_BASE_AREAS "$EM_SOURCE/lib/em/CMakeLists.txt")
base_tools=$(cmake_list EM_BASE_TOOLS "$EM_SOURCE/tools/CMakeLists.txt")
[[ -n $base_areas && -n $base_tools ]] || fail "EM_BASE_AREAS / EM_BASE_TOOLS not found in the CMakeLists"

for area in $base_areas; do
  hits=$(grep -rlE '#include[[:space:]]*[<"](torch|ATen|c10)/' "$EM_SOURCE/lib/em/$area" || true)
  if [[ -z $hits ]]; then pass "lib/em/$area includes no LibTorch header"
  else fail "lib/em/$area is in the base layer but includes LibTorch: $hits"; fi
done
# The draw layer (EM_DRAW_AREAS, cairo pictures) is linked by LibTorch-free tools too: no LibTorch header, and no
# header of a LibTorch area (which would bring LibTorch in through it).
draw_areas=$(cmake_list EM_DRAW_AREAS "$EM_SOURCE/lib/em/CMakeLists.txt")
torch_areas=$(cmake_list EM_TORCH_AREAS "$EM_SOURCE/lib/em/CMakeLists.txt")
[[ -n $draw_areas && -n $torch_areas ]] || fail "EM_DRAW_AREAS / EM_TORCH_AREAS not found in lib/em/CMakeLists.txt"
for area in $draw_areas; do
  hits=$(grep -rlE "#include[[:space:]]*[<\"]((torch|ATen|c10)/|em/(${torch_areas// /|})/)" "$EM_SOURCE/lib/em/$area" || true)
  if [[ -z $hits ]]; then pass "lib/em/$area (draw layer) includes no LibTorch header"
  else fail "lib/em/$area is in the draw layer but includes LibTorch: $hits"; fi
done
# The files of LibTorch areas that the fuzz build compiles beside em_base (fuzz/CMakeLists.txt: the hyperparameter
# table, the model config readers) hold no LibTorch either, nor include a header of those areas that is not one of
# them.
torch_free=$(grep -oE 'lib/em/[a-z]+/[a-z0-9_]+\.cpp' "$EM_SOURCE/fuzz/CMakeLists.txt" | sort -u)
[[ -n $torch_free ]] || fail "no lib/em file named in fuzz/CMakeLists.txt"
for cpp in $torch_free; do
  [[ -f $EM_SOURCE/$cpp ]] || { fail "$cpp (named in fuzz/CMakeLists.txt) does not exist"; continue; }
  files=("$EM_SOURCE/$cpp")
  [[ -f $EM_SOURCE/${cpp%.cpp}.hpp ]] && files+=("$EM_SOURCE/${cpp%.cpp}.hpp")
  if grep -qE '#include[[:space:]]*[<"](torch|ATen|c10)/' "${files[@]}"; then
    fail "$cpp or its header includes LibTorch"
  else
    pass "$cpp (built by the fuzz build) includes no LibTorch header"
  fi
  for header in $(sed -n 's|^#include[[:space:]]*"em/\([a-z]*/[a-z0-9_]*\)\.hpp".*|\1|p' "${files[@]}" | sort -u); do
    area=${header%%/*}
    [[ " $base_areas " == *" $area "* ]] && continue
    grep -qx "lib/em/$header.cpp" <<<"$torch_free" ||
      fail "$cpp includes em/$header.hpp, a LibTorch-area header whose .cpp fuzz/CMakeLists.txt lacks"
  done
done
# The base tools' mains and the base CLI layer too.
for src in "$EM_SOURCE/tools/common/cli.cpp" "$EM_SOURCE/tools/common/cli.hpp"; do
  grep -qE '#include[[:space:]]*([<"](torch|ATen|c10)/|"common/torch_cli)' "$src" && fail "$src includes LibTorch" || pass "$(basename "$src") has no LibTorch"
done

needs_torch() { readelf -d "$1" | grep NEEDED | grep -qE 'libtorch|libc10'; }
for tool in $base_tools; do
  [[ -x $EM_BIN/$tool ]] || { fail "$tool was not built"; continue; }
  grep -qE '#include[[:space:]]*"common/torch_cli.hpp"|#include[[:space:]]*[<"](torch|ATen|c10)/' "$EM_SOURCE/tools/$tool/main.cpp" &&
    fail "tools/$tool/main.cpp includes LibTorch"
  if needs_torch "$EM_BIN/$tool"; then fail "$tool links LibTorch: $(readelf -d "$EM_BIN/$tool" | grep NEEDED | grep -oE 'lib(torch|c10)[^]]*' | tr '\n' ' ')"
  else pass "$tool has no libtorch/libc10 NEEDED entry"; fi
  expect_exit 0 "$tool --help" -- "$EM_BIN/$tool" --help
done
# The check can fail: a model tool does need LibTorch.
if needs_torch "$EM_BIN/em-predict"; then pass "em-predict (a model tool) does link LibTorch"
else fail "em-predict shows no libtorch NEEDED entry: the readelf check above proves nothing"; fi
finish
