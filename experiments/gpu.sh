#!/usr/bin/env bash
# The reward-model experiments at GPU scale in one device call (under 10 minutes on one H200). Prepared here with
# experiments/gpu_prepare.sh, then run on the device machine with .gpu carried:
#
#   device run  command="bash experiments/gpu.sh"  carry=[".gpu"]  timeout_s=600
#
# Everything comes back as one archive, $OUT/gpu-results.tgz (metrics.json, section.md, the derived YAML and
# gpu_run.json per experiment); its results go to docs/results/long-inputs.md. SCALE, MAX_LENGTH, BUDGET_MIN and
# EXPERIMENTS override the defaults of experiments/gpu.py; POOL, BACKBONE and WORK where inputs and outputs are
# (tests/experiments/test_gpu_script.py runs it so on a CPU with a tiny backbone).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-out}
WORK=${WORK:-runs/gpu}
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import trl, datasets" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/nvidia-smi.txt"
# Killed at 9 min so the archive below is still written inside the device call's 10 (gpu_run.json is kept
# after each finished experiment).
timeout "${KILL_AFTER_S:-540}" "$PYTHON" experiments/gpu.py --pool "${POOL:-.gpu/pool.jsonl.gz}" \
  --backbone "${BACKBONE:-.gpu/backbone}" --out "$WORK/results" --root "$WORK/workspace" \
  --scale "${SCALE:-8}" --max-length "${MAX_LENGTH:-512}" --budget-min "${BUDGET_MIN:-7}" \
  ${EXPERIMENTS:+--experiments "$EXPERIMENTS"} 2>&1 | tee "$WORK/log.txt"
status=${PIPESTATUS[0]}
cp "$WORK/log.txt" "$OUT/log.txt"
tar czf "$OUT/gpu-results.tgz" -C "$WORK" results log.txt
exit "$status"
