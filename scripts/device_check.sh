#!/usr/bin/env bash
# The GPU check of emkit (docs/devices.md), for a machine without network that has PyTorch's CUDA wheel: builds
# emkit against the wheel's LibTorch 2.x in a separate build folder, runs the test suite with the CUDA cases enabled
# (EM_TEST_DEVICE=cuda) and short benchmarks (CUDA vs CPU), and prints a summary table. Downloads nothing: when a
# dependency is missing it says which Debian package (or carried folder) provides it, and stops.
#   scripts/device_check.sh [--build DIR] [--python python3] [--jobs N] [--skip-tests] [--skip-bench]
#   EM_DEPS_PREFIX=/carried/prefix scripts/device_check.sh   # header-only deps carried in a folder (include/...)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-device python=python3 jobs=$(nproc) run_tests=1 run_bench=1
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --skip-tests) run_tests=0; shift ;;
    --skip-bench) run_bench=0; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "device_check: $*" >&2; }
declare -a rows=()  # "step|result|detail" for the summary
row() { rows+=("$1|$2|$3"); }
summary() {
  echo
  printf '%-28s %-8s %s\n' "check" "result" "detail"
  printf '%-28s %-8s %s\n' "-----" "------" "------"
  local r
  for r in "${rows[@]}"; do IFS='|' read -r a b c <<<"$r"; printf '%-28s %-8s %s\n' "$a" "$b" "$c"; done
}
stop() { row "$1" "FAIL" "$2"; summary; exit 1; }

# 1. PyTorch's LibTorch: where, which ABI, which CUDA.
command -v "$python" >/dev/null || stop "python" "$python not found (--python PATH names another)"
info=$("$python" - <<'PY' 2>&1
import torch
print(torch.utils.cmake_prefix_path)
print(int(torch.compiled_with_cxx11_abi()))
print(torch.__version__)
print(torch.version.cuda or "none")
print(int(torch.cuda.is_available()), torch.cuda.device_count(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", sep="|")
PY
) || stop "torch (python)" "import torch failed: $(echo "$info" | tail -1)"
{ read -r prefix; read -r cxx11_abi; read -r torch_version; read -r torch_cuda; read -r gpu; } <<<"$info"
IFS='|' read -r cuda_ok gpu_count gpu_name <<<"$gpu"
row "torch (python)" "ok" "$torch_version, CUDA $torch_cuda, cxx11 ABI $cxx11_abi, $prefix"
[[ $torch_cuda != none ]] || stop "CUDA LibTorch" "this torch ($torch_version) is a CPU build: install PyTorch's CUDA wheel"
[[ $cuda_ok == 1 ]] || stop "CUDA device" "torch.cuda.is_available() is False: no GPU or driver visible"
row "CUDA device" "ok" "$gpu_count visible, cuda:0 = $gpu_name"

# 2. The small dependencies: header-only or Debian's, found locally (EM_DEPS_PREFIX first).
deps_prefix=${EM_DEPS_PREFIX:-}
missing=()
have_header() {  # have_header PACKAGE HEADER...: one of the headers exists under an include root
  local pkg=$1 h dir; shift
  for h in "$@"; do
    for dir in ${deps_prefix:+"$deps_prefix/include"} /usr/include /usr/local/include "$prefix/../../include"; do
      [[ -f $dir/$h ]] && return 0
    done
  done
  missing+=("$pkg ($1)")
}
have_header libcli11-dev CLI/CLI.hpp
have_header libsimdjson-dev simdjson.h
have_header libfmt-dev fmt/format.h
have_header nlohmann-json3-dev nlohmann/json.hpp
have_header libstb-dev stb/stb_image.h stb_image.h
have_header libcpp-httplib-dev httplib.h
have_header catch2 catch2/catch.hpp
have_header libgloo-dev gloo/config.h
command -v cmake >/dev/null || missing+=("cmake (cmake)")
command -v ninja >/dev/null || missing+=("ninja-build (ninja)")
command -v nvcc >/dev/null || [[ -n ${CUDAToolkit_ROOT:-} ]] ||
  missing+=("nvidia-cuda-toolkit (nvcc: TorchConfig.cmake's find_package(CUDAToolkit); or set CUDAToolkit_ROOT)")
if ((${#missing[@]})); then
  stop "dependencies" "missing: ${missing[*]}; install those apt packages or carry them under EM_DEPS_PREFIX/include"
fi
row "dependencies" "ok" "CLI11 simdjson fmt nlohmann-json stb cpp-httplib catch2 gloo cmake ninja nvcc"
if [[ $cxx11_abi == 0 ]]; then
  # Debian's compiled libraries (fmt, simdjson, cpp-httplib) use the C++11 std::string ABI; code built with the old
  # ABI for such a torch cannot link them.
  stop "C++ ABI" "torch $torch_version uses the pre-C++11 ABI; Debian's fmt/simdjson/cpp-httplib use the C++11 one: use a cxx11-ABI LibTorch (PyTorch >= 2.7 wheels)"
fi

# 3. Configure and build against that LibTorch, in a build folder of its own.
log=$build/device_check.log
mkdir -p "$build"
cmake_args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
            "-DCMAKE_PREFIX_PATH=$prefix${deps_prefix:+;$deps_prefix}"
            "-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=$cxx11_abi")
# NCCL's header for data-parallel CUDA runs (docs/distributed.md): the wheel's nvidia-nccl package, or NCCL_ROOT.
nccl_root=${NCCL_ROOT:-$("$python" -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))' 2>/dev/null || true)}
[[ -n $nccl_root ]] && cmake_args+=("-DNCCL_ROOT=$nccl_root")
if ! cmake "${cmake_args[@]}" >"$log" 2>&1; then stop "configure" "cmake failed: $(grep -m1 -i 'error' "$log" || tail -1 "$log") (log: $log)"; fi
row "configure" "ok" "$build against $prefix"
t0=$(date +%s)
if ! cmake --build "$build" -j "$jobs" >>"$log" 2>&1; then
  stop "build" "failed: $(grep -m1 'error' "$log" || tail -1 "$log") (log: $log)"
fi
row "build" "ok" "$(( $(date +%s) - t0 )) s, $jobs jobs"
bin=$build/bin
# The binaries must see CUDA through this LibTorch (a linker that drops libtorch_cuda.so would leave them CPU-only).
if "$bin/em-predict" --help >/dev/null 2>&1 && ldd "$bin/em-predict" | grep -q libtorch_cuda; then
  row "libtorch_cuda linked" "ok" "em-predict NEEDED libtorch_cuda.so"
else
  row "libtorch_cuda linked" "FAIL" "em-predict does not load libtorch_cuda.so: --device cuda cannot work"
fi

# 4. The test suite with the CUDA cases enabled.
if ((run_tests)); then
  set +e
  (cd "$build" && EM_TEST_DEVICE=cuda ctest --output-on-failure -j "$jobs" --timeout 1200) >"$build/ctest.log" 2>&1
  ctest_rc=$?
  set -e
  line=$(grep -E '^[0-9]+% tests passed' "$build/ctest.log" || echo "no ctest summary")
  skipped=$(grep -c 'Not Run\|Skipped' "$build/ctest.log" || true)
  cuda_cases=$("$bin/em_unit_tests" '[cuda]' --list-test-names-only 2>/dev/null | grep -c . || true)
  row "ctest (EM_TEST_DEVICE=cuda)" "$([[ $ctest_rc == 0 ]] && echo ok || echo FAIL)" \
    "$line; $skipped skipped; $cuda_cases [cuda] unit cases (log: $build/ctest.log)"
  grep -E '\(Failed\)|\*\*\*Failed|\(Timeout\)' "$build/ctest.log" | head -n 20 >&2 || true
fi

# 5. Benchmarks: images/s on cuda vs cpu.
if ((run_bench)); then
  work=$(mktemp -d "${TMPDIR:-/tmp}/em-device-check.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # 64 noise PNGs of 224x224 in two classes (stdlib only: no network, no numpy).
  "$python" - "$work/data" <<'PY'
import os, random, struct, sys, zlib
def png(path, w, h, rng):
    raw = b"".join(b"\0" + bytes(rng.getrandbits(8) for _ in range(3 * w)) for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
rng = random.Random(0)
for split, n in (("train", 32), ("validation", 4)):
    for label in ("a", "b"):
        os.makedirs(f"{sys.argv[1]}/{split}/{label}", exist_ok=True)
        for i in range(n):
            png(f"{sys.argv[1]}/{split}/{label}/{i}.png", 224, 224, rng)
PY
  images_per_second() { "$python" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["train_samples_per_second"], 1))' "$1" 2>/dev/null || echo "?"; }
  if "$bin/em-train" --help 2>/dev/null | grep -q -- '--device'; then
    for dev in cuda cpu; do
      if "$bin/em-train" --algo classification --data "$work/data" --model_config resnet-50 --input_size 224 \
           --per_device_train_batch_size 16 --num_train_epochs 1 --eval_strategy no --save_steps 1000000 \
           --output_dir "$work/run-$dev" --device "$dev" -q >"$work/train-$dev.json" 2>"$work/train-$dev.err"; then
        row "em-train ResNet-50 224 $dev" "ok" "$(images_per_second "$work/train-$dev.json") images/s (64 images, batch 16, 4 steps)"
      else
        row "em-train ResNet-50 224 $dev" "FAIL" "$(tail -1 "$work/train-$dev.err")"
      fi
    done
  else
    row "em-train --device" "n/a" "this em-train has no --device flag yet: training benchmark not run"
  fi
  # Inference ceiling of a saved model (em-serve --measure_ceiling): a ResNet-50 folder from a 1-step run, or the
  # run above.
  model=
  for dev in cuda cpu; do [[ -d $work/run-$dev/model ]] && model=$work/run-$dev/model; done
  if [[ -z $model ]] && "$bin/em-train" --algo classification --data "$work/data" --model_config resnet-50 \
       --input_size 224 --per_device_train_batch_size 64 --num_train_epochs 1 --eval_strategy no \
       --save_steps 1000000 --output_dir "$work/run-model" -q >/dev/null 2>&1; then
    model=$work/run-model/model
  fi
  if [[ -n $model ]]; then
    img=$(find "$work/data/validation" -name '*.png' | sort | sed -n 1p)
    for dev in cuda cpu; do
      if "$bin/em-serve" --model "$model" --device "$dev" --measure_ceiling "$img" --ceiling_batch_sizes 1,16,64 \
           --ceiling_seconds 2 >"$work/ceiling-$dev.json" 2>"$work/ceiling-$dev.err"; then
        row "em-serve ceiling $dev" "ok" "$("$python" -c 'import json,sys; print(", ".join(f"batch {r["batch_size"]}: {r["images_per_second"]:.1f} images/s" for r in json.load(open(sys.argv[1]))["batch_sizes"]))' "$work/ceiling-$dev.json")"
      else
        row "em-serve ceiling $dev" "FAIL" "$(tail -1 "$work/ceiling-$dev.err")"
      fi
    done
  else
    row "em-serve ceiling" "n/a" "no ResNet-50 model folder could be made"
  fi
fi

summary
for r in "${rows[@]}"; do [[ $r == *"|FAIL|"* ]] && exit 1; done
exit 0
