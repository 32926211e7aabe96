"""The two limits behind the goals `make bench` misses (docs/results/bench-misses.md), measured directly.

1. Padding: the share of the tokens TRL's reward trainer processes that are padding (chosen and rejected of a
   batch padded together to the longest of them), averaged over random batchings of the bench's training pairs,
   and the speed-up removing all of it would bound (for a model whose cost is linear in tokens).
2. Matrix shapes: bf16 products of MiniLM's shapes against the 2048 x 2048 x 2048 product that MFU is measured
   against, timed beside each other the way MFU's reference is (benchmarks/long_inputs.gemm_rate, best of 10).
3. Where a training step's time goes: torch's profiler over one step (forward, backward, AdamW) of the init as warm
   trains it (attention-probability dropout 0, the member's dropout on the hidden states, bf16 autocast), on
   32 rows of `--profile-tokens` tokens, the self time of its operators grouped into matrix products, fused
   attention, dropout masks and the rest.

    python benchmarks/bench_limits.py --out docs/results/bench-limits.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.long_inputs import gemm_rate
from warm.fileio import write_json

SHAPES = ((2048, 2048, 2048), (2048, 384, 1536), (2048, 1536, 384), (2048, 384, 384))


def padding_share(init: str, data: str, pairs: int, batch_size: int, max_length: int, draws: int = 200) -> dict:
    from warm.data.formats import load_preferences
    from warm.data.tokenize import tokenize_pairs
    from warm.models.loading import load_encoder

    tokenized = tokenize_pairs(load_encoder(init, max_length=max_length), load_preferences(data, limit=pairs))
    chosen = np.array([len(s) for s in tokenized.chosen_ids()])
    rejected = np.array([len(s) for s in tokenized.rejected_ids()])
    longest = np.maximum(chosen, rejected)
    rng = np.random.default_rng(0)
    padded = np.mean([sum(2 * len(idx) * longest[idx].max() for idx in np.array_split(order, len(order) // batch_size))
                      for order in (rng.permutation(len(longest)) for _ in range(draws))])
    share = 1 - (chosen.sum() + rejected.sum()) / padded
    return {"max_length": max_length, "tokens_per_sequence": float((chosen.sum() + rejected.sum()) / (2 * len(chosen))),
            "padding_share": float(share), "speedup_bound": float(1 / (1 - share))}


def gemm_rates() -> dict:
    rates = {"x".join(map(str, shape)): gemm_rate(shape=shape) for shape in SHAPES}
    reference = rates["2048x2048x2048"]
    return {shape: {"flops_per_second": rate, "share_of_2048": rate / reference} for shape, rate in rates.items()}


GROUPS = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm"), "fused attention": ("flash_attention",),
          "dropout masks": ("aten::bernoulli",)}


def step_profile(init: str, tokens: int, dropout: float = 0.05) -> dict:
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(init, attention_probs_dropout_prob=0.0,
                                                               hidden_dropout_prob=dropout).train()
    ids = torch.randint(1000, 20000, (32, tokens))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        logits.float().sum().backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(2):  # first-call set-up
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events)
    shares = {group: sum(t for key, t in events if any(n in key for n in names)) / total
              for group, names in GROUPS.items()}
    return {"rows": 32, "tokens": tokens, "hidden_dropout": dropout, "self_cpu_seconds": total / 1e6,
            "shares": {**shares, "the rest": 1 - sum(shares.values())}}


def main() -> None:
    from warm.data.demo import demo_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--init", default="runs/bench/all/serve/init",
                        help="a warm init (default: the one `make bench` built; its chat template renders the pairs)")
    parser.add_argument("--pairs", type=int, default=96, help="the bench's training pairs (6 steps x 16)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--profile-tokens", type=int, default=200, help="the bench's mean tokens per row at 384")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = {"command": "python benchmarks/bench_limits.py", "date": time.strftime("%Y-%m-%d"),
              "torch_threads": torch.get_num_threads(),
              "padding": [padding_share(args.init, str(demo_path("train")), args.pairs, args.batch_size, length)
                          for length in (128, 384)],
              "gemm": gemm_rates(), "step_profile": step_profile(args.init, args.profile_tokens)}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
