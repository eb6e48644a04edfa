#!/usr/bin/env bash
# Installs what emkit needs on Debian 12 (idempotent; skips apt when everything is present).
# OpenBLAS matters: Debian's LibTorch calls the generic libblas.so.3, and without libopenblas0-pthread that is the
# reference BLAS, ~55x slower on matrix products.
set -euo pipefail

# libcairo2-dev + fonts-dejavu-core: lib/em/draw's pictures (cairo's shapes and text in the DejaVu Sans font file,
# which the build's own tests draw with, so both belong to the build). libzip-dev: PyTorch checkpoints (zip files).
BUILD_PKGS=(build-essential cmake ninja-build ccache libtorch-dev libstb-dev libcli11-dev libsimdjson-dev libfmt-dev
            nlohmann-json3-dev catch2 libcpp-httplib-dev libgloo-dev libopenblas0-pthread jq libcairo2-dev
            fonts-dejavu-core libzip-dev)
# Data for the quick start, and the Python references that produce golden values and baselines.
EXTRA_PKGS=(dataset-fashion-mnist python3 python3-numpy python3-torch python3-torchvision python3-sklearn python3-pil python3-prometheus-client curl time)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then want+=("${EXTRA_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
