#!/usr/bin/env bash
# ternpynq quick start on a fresh Debian machine with Python 3.11.
#   bash scripts/quickstart.sh        set up, then classify two photos with the ImageNet model,
#                                     and the Fashion-MNIST samples with the ternary model on the
#                                     emulated overlay (csim), checked against emu
#   bash scripts/quickstart.sh test   set up the dev tools, then run ruff and the test suite,
#                                     then the board-stack leg (scripts/board_stack.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"
case "$mode" in demo|test) ;; *) echo "usage: bash scripts/quickstart.sh [demo|test]" >&2; exit 2;; esac

# System packages: a C++ compiler for the overlay's C-simulation, tclsh to check the build
# scripts, yosys to check the PE datapath's resource calibration, and Debian's Fashion-MNIST
# for training and evaluation.
apt_packages=(g++ make tcl yosys iverilog python3-venv dataset-fashion-mnist)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo ">> installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$mode" = demo ]; then
  "${pip[@]}" -e .  # the runtime needs numpy and pillow only
  # real photos, 1000 ImageNet classes: the shipped 5-trit EfficientNet-Lite0 on the golden model
  .venv/bin/ternpynq classify --model imagenet host/ternpynq/models/photos/*.jpg --top 3
  # the ternary, PE-pruned ResNet-20 on the overlay's own C++ (csim), checked against emu
  .venv/bin/ternpynq inspect host/ternpynq/models/fashion-mnist-resnet20.tpq
  .venv/bin/ternpynq classify host/ternpynq/models/samples/*.png --backend csim
  .venv/bin/ternpynq selftest --backend csim
else
  # torch is pinned so pip takes the local CPU build, never a multi-GB CUDA one
  "${pip[@]}" torch==2.13.0 -e '.[dev]'
  .venv/bin/ruff check .
  .venv/bin/python -m pytest -q
  # The board-stack leg: Python 3.10, numpy and Pillow at their floors, no torch or onnx.
  bash scripts/board_stack.sh
fi
