#!/usr/bin/env bash
# The RL comparison of docs/results/rl.md: a policy RL-fine-tuned against the single best member vs one against
# WARM M=6 (both proxies trained on 25%-corrupted labels), judged by the control reward model.
#
#   bash experiments/rl.sh            # STEPS=50: rl.md as written (planned for 80, stopped and judged at step 50)
#   STEPS=200 bash experiments/rl.sh  # longer: the runs resume from their last checkpoint on the same schedule
#   STEPS=20 LR=5e-5 MONITOR_EVERY=4 WINRATES=0 OUT=runs/rl-monitor bash experiments/rl.sh
#                                     # rl.md's reward-hacking monitor run: shorter, a faster policy, no win rates
#
# Needs: `make policy` (SmolLM2-135M-Instruct), the corruption experiment's members and merge and the control
# (`warm experiment experiments/corruption.yaml` then `warm experiment experiments/control_rm.yaml`). The two runs
# go side by side, one CPU thread each, so they share the machine equally.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-runs/rl}
STEPS=${STEPS:-50}
WS=${WS:-runs/experiments}
SINGLE=${SINGLE:?path of the best-validation corrupted member, e.g. $WS/members/<hash>/members/m00}
WARM=${WARM:?path of the corrupted WARM M=6 merge, e.g. $WS/merged/<hash>}
CONTROL=${CONTROL:?path of the control reward model, e.g. $WS/control_models/<hash>}
LIVE_JUDGE=${LIVE_JUDGE:-$CONTROL}   # scored live during the runs (rl.md used the clean WARM M=6)
LR=${LR:-1e-5}
MONITOR_EVERY=${MONITOR_EVERY:-0}    # K > 0: the reward-hacking monitor every K steps, with the control as its judge
WINRATES=${WINRATES:-1}

mkdir -p "$OUT"
$BIN/python scripts/pool_prompts.py --split train --max-chars 400 --out "$OUT/train_prompts.jsonl"
$BIN/python scripts/pool_prompts.py --max-chars 400 --n 32 --out "$OUT/eval_prompts.jsonl"
$BIN/python scripts/pool_prompts.py --max-chars 400 --out "$OUT/heldout_prompts.jsonl"
# the monitor of both runs measures the disagreement of WARM's six members (warm reads them, with their weights,
# from the merge's warm_merge.json), so the two runs are watched alike; only read when MONITOR_EVERY > 0
for run in single warm6; do
  reward=$([ $run = single ] && echo "$SINGLE" || echo "$WARM")
  OMP_NUM_THREADS=1 $BIN/warm rl --reward "$reward" --control "$LIVE_JUDGE" --out "$OUT/$run" \
    --prompts "$OUT/train_prompts.jsonl" --eval-prompts "$OUT/eval_prompts.jsonl" --kl-coef 0.01 --steps "$STEPS" \
    --eval-every 10 --num-generations 4 --batch-size 4 --max-new-tokens 64 --lr "$LR" --reward-max-length 128 \
    --monitor-every "$MONITOR_EVERY" --monitor-members "$WARM" --keep-checkpoints 0 --resume --quiet &
done
wait
$BIN/warm rl-report single="$OUT/single" warm6="$OUT/warm6" --control "$CONTROL" --max-length 128 --out "$OUT/report"
[ "$WINRATES" = 1 ] || exit 0
# rl.md's three win rates: the two policies at the last step (final/ = checkpoint-STEPS), and each against the initial one
INITIAL=packaged:smollm2-135m-instruct
for pair in "warm6 single" "warm6 initial" "single initial"; do
  set -- $pair
  a=$([ $1 = initial ] && echo $INITIAL || echo "$OUT/$1/final")
  b=$([ $2 = initial ] && echo $INITIAL || echo "$OUT/$2/final")
  $BIN/warm winrate "$a" "$b" --prompts "$OUT/heldout_prompts.jsonl" --judge "$CONTROL" \
    --max-new-tokens 64 --judge-max-length 128 --samples 2 --batch-size 16 --out "$OUT/winrate-$1-vs-$2"
done
