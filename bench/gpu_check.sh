#!/usr/bin/env bash
# One-command device check: train L = 64, κ = 0.25, λ = 0.01 on CUDA for a fixed
# budget with the default `srflow train` (grown stack), then sample with it and run direct
# HMC on the same device; prints s/step, fresh ESS/N, configs/s and ESS/N × configs/s, and
# writes a JSON report ($OUT/gpu_check.json when $OUT is set, else runs/gpu_check/).
# Takes ≤ 8 min (5 min training + sampling + HMC). Without CUDA: one line, exit 3.
#
#     bench/gpu_check.sh [--minutes 5]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { scripts/setup >&2; }
exec "$PY" bench/gpu_check.py "$@"
