#!/usr/bin/env bash
# The GPU check of issue 27 (bench/gpu_check.py): the smoke of config/paper.yaml on CUDA, then the 58M distillation at
# its configured batch with live teachers and from the teacher cache; one JSON (--out, default runs/gpu_check.json).
#   bash bench/gpu_check.sh --data data --out "$OUT/gpu_check.json"   # data/: babylm_10M/, babylm_dev/, blimp/
#   bash bench/gpu_check.sh --device cpu                               # the tiny dry path on a CPU (about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
# $PYTHON, else the repo's .venv, else python3 (the GPU machine's, which holds torch)
PY="${PYTHON:-}"
[ -z "$PY" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
PY="${PY:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
exec "$PY" bench/gpu_check.py "$@"
