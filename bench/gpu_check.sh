#!/usr/bin/env bash
# One-command device check on one GPU (bench/gpu_check.py; L = 64, λ = 0.01, float32).
# Prints readable lines and writes a JSON report ($OUT/gpu_check.json when $OUT is set, else
# runs/gpu_check/), rewritten after each part so a run cut short keeps what finished:
#   train        κ = 0.25: the default `srflow train` (IR, grown stack) for --minutes (1.5),
#                fresh ESS/N, s/step; sampling 8192 (configs/s, ESS/N, acceptance); direct
#                HMC for 20 s beside it and flow / HMC per independent χ
#   critical     κ = 0.260 (ξ ≈ L/4): the same training and sampling
#   hmc, cluster direct HMC and the cluster algorithm at κ = 0.260, 25 s each on 256
#                chains: configs/s, τ_int(χ = V·M²), independent χ per second
#   ratios       flow (ESS/N × configs/s) / HMC and / cluster per independent χ at κ = 0.260
#   batch_sweep  batch 64…1024: s per optimiser step, training and push configs/s
#   compiled     push with torch.compile'd fields beside eager: configs/s, max |Δ log q|
#   compiled_step  one optimiser step eager and compiled
# Takes ≈ 8-9 min (two trainings of 1.5 min with their thermalisation and evaluation ≈ 5,
# direct samplers ≈ 1.5, sweeps ≈ 1, compilation 1-2). A failing part records its error and
# the rest runs. Without CUDA: one line on stderr, exit 3, no report.
#
#     bench/gpu_check.sh [--minutes 1.5] [--parts compiled,batch_sweep] [--quick]
#     bench/gpu_check.sh --device cpu --quick     # L = 16, ≈ 30 s: a smoke test of the script
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { scripts/setup >&2; }
exec "$PY" bench/gpu_check.py "$@"
