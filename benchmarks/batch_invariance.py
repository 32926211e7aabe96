"""How much one item's reward moves with what it is batched with, per scoring precision.

`warm serve` micro-batches concurrent requests, so an item shares a forward pass with whatever else arrived. This
scores a sample of items once each on its own (batch of 1) and once mixed into batches of `--batch-size` with the
rest of the split, and reports the largest absolute and relative difference, for fp32 and bf16.

    python benchmarks/batch_invariance.py runs/demo/warm --out docs/results/compatibility/batch_invariance.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from warm.data.demo import demo_path
from warm.data.formats import load_preferences
from warm.fileio import write_json
from warm.score.scorer import RewardModelScorer


def measure(model: str, data: str, items: int, pool: int, batch_size: int, precision: str) -> dict:
    pairs = load_preferences(data, limit=pool)
    prompts = [*pairs.prompt, *pairs.prompt]
    responses = [*pairs.chosen, *pairs.rejected]
    scorer = RewardModelScorer(model, batch_size=batch_size, precision=precision)
    mixed = scorer.score_texts(prompts, responses)
    picks = np.linspace(0, len(prompts) - 1, items).astype(int)
    alone = np.array([scorer.score_texts([prompts[i]], [responses[i]])[0] for i in picks])  # a batch of one each
    diff = np.abs(alone - mixed[picks])
    return {"precision": scorer.precision, "items": int(items), "batch_size": batch_size,
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "max_rel_diff": float((diff / np.maximum(np.abs(alone), 1e-6)).max()),
            "reward_abs_mean": float(np.abs(alone).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", default=str(demo_path("test_ood")))
    parser.add_argument("--items", type=int, default=100, help="items scored alone and mixed")
    parser.add_argument("--pool", type=int, default=200, help="pairs whose responses fill the mixed batches")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    started = time.time()
    rows = [measure(args.model, args.data, args.items, args.pool, args.batch_size, p) for p in ("fp32", "bf16")]
    result = {"command": "python benchmarks/batch_invariance.py " + args.model, "model": args.model,
              "data": args.data, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "date": time.strftime("%Y-%m-%d"), "wall_seconds": round(time.time() - started, 1), "rows": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
