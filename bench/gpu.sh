#!/usr/bin/env bash
# GPU figures in one call (see bench/gpu_bench.py): training steps/s, score caching (image·σ/s) and
# evaluation at 64 and 128 px with bf16, peak memory, share of the GPU's bf16 peak.
# Fails with status 2 and a message when no CUDA GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" bench/gpu_bench.py --out "${OUT_JSON:-bench/results/gpu.json}" "$@"
