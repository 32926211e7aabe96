"""Long inputs on the CPU: training pairs/s and scoring sequences/s at max lengths 128-512, before and after.

    python benchmarks/long_inputs.py --out docs/results/long-inputs/throughput.json      # ~15 min on 2 cores

For each max length, on the bundled demo data with the packaged MiniLM (a fresh `warm init`):
- the share of sequences the contract cuts (train and out-of-distribution splits);
- member training (warm's fit path, one member, --steps optimiser steps of --batch-size pairs, bf16 autocast),
  measured twice in one process, alternating: "before" reproduces the previous code (dropout on the attention
  probabilities at the member's rate, one padded forward pass per batch), "after" is the current code (no attention
  dropout, so PyTorch's fused attention kernel runs; forward passes bucketed by length, warm.train.buckets);
- scoring (warm's scorer, the `warm eval` path), unchanged code, as a reference;
- model FLOPs utilisation of training: 3 x forward FLOPs of the real (unpadded) tokens, against a 2048^2 bf16
  matrix product timed in the same run.
The run's raw numbers and the machine go to --out (JSON); a markdown table is printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from warm.fileio import write_json


def gemm_rate(dtype=torch.bfloat16, shape: tuple[int, int, int] = (2048, 2048, 2048), repeats: int = 10) -> float:
    """FLOP/s of one (rows x inner) @ (inner x cols) matrix product, best of `repeats`; the 2048^2 default is the
    machine's matmul ceiling that MFU is measured against."""
    rows, inner, cols = shape
    a, b = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, cols, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * cols / best


def forward_flops_per_token(config, length: int) -> float:
    """2 x (non-embedding parameters) + attention's 4 x layers x length x hidden, per token of a sequence."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * hidden * hidden + 2 * hidden * config.intermediate_size  # QKV+O, FFN (multiply-adds)
    return 2 * layers * per_layer + 4 * layers * length * hidden


def training_flops_per_pair(config, pairs) -> float:
    """Training FLOPs of one pair, averaged over `pairs` (TokenizedPairs): forward and backward (3 x forward) of the
    real (unpadded) tokens of its two sequences."""
    lengths = [len(s) for s in pairs.chosen_ids() + pairs.rejected_ids()]
    return 3 * sum(n * forward_flops_per_token(config, n) for n in lengths) / len(pairs.chosen_ids())


def train_rate(init: str, pairs, attention_dropout: float, bucketed: bool, steps: int, batch_size: int) -> dict:
    from transformers import AutoConfig

    import warm.train.buckets as buckets
    from warm.models.dropout import set_dropout
    from warm.models.loading import load_reward_model, load_tokenizer
    from warm.train.fit import FitSettings, fit_reward_model, pairs_dataset

    config = AutoConfig.from_pretrained(init)
    set_dropout(config, 0.1, attention_dropout)
    model = load_reward_model(init, config=config)
    saved = buckets.PASS_OVERHEAD_TOKENS
    buckets.PASS_OVERHEAD_TOKENS = buckets.PASS_OVERHEAD_TOKENS if bucketed else 10**12  # one pass: the old code
    try:
        settings = FitSettings(learning_rate=5e-5, batch_size=batch_size, epochs=1.0, max_steps=steps, seed=0,
                               precision="bf16")
        metrics = fit_reward_model(model, load_tokenizer(init), pairs_dataset(pairs), settings, progress=False)
    finally:
        buckets.PASS_OVERHEAD_TOKENS = saved
    return {"pairs_per_second": metrics["pairs_per_second"], "wall_seconds": metrics["wall_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="128,256,384,512")
    parser.add_argument("--pairs", type=int, default=160, help="Training pairs (the first N of the demo train split).")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--score-pairs", type=int, default=100, help="OOD pairs scored (both responses).")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from transformers import AutoConfig

    from warm.config import InitConfig
    from warm.data.demo import demo_path
    from warm.data.formats import load_preferences
    from warm.data.tokenize import tokenize_pairs
    from warm.train.init import build_init
    from warm.models.loading import load_encoder
    from warm.score.scorer import RewardModelScorer

    workdir = Path(tempfile.mkdtemp(prefix="warm-long-inputs-"))
    init = str(workdir / "init")
    build_init(InitConfig(out=init, max_length=512), progress=False)
    model_config = AutoConfig.from_pretrained(init)
    train = load_preferences(str(demo_path("train")), limit=args.pairs)
    ood = load_preferences(str(demo_path("test_ood")), limit=args.score_pairs)
    peak = gemm_rate()
    rows = []
    for length in (int(x) for x in args.lengths.split(",")):
        encoder = load_encoder(init, max_length=length)
        pairs = tokenize_pairs(encoder, train)
        ood_pairs = tokenize_pairs(encoder, ood)
        row = {"max_length": length,
               "cut_train": pairs.truncated / len(pairs.sequences), "cut_ood": ood_pairs.truncated / len(ood_pairs.sequences),
               "mean_tokens_train": sum(map(len, pairs.sequences)) / len(pairs.sequences)}
        for name, attention_dropout, bucketed in (("before", 0.1, False), ("after", 0.0, True)):
            row[name] = train_rate(init, pairs, attention_dropout, bucketed, args.steps, args.batch_size)
            print(f"{length}: training {name} {row[name]['pairs_per_second']:.2f} pairs/s", file=sys.stderr)
        row["training_gain"] = row["after"]["pairs_per_second"] / row["before"]["pairs_per_second"]
        flops_per_pair = training_flops_per_pair(model_config, pairs)
        row["training_mfu"] = row["after"]["pairs_per_second"] * flops_per_pair / peak
        scorer = RewardModelScorer(init, max_length=length, precision="bf16", batch_size=32)
        scorer.score_sequences(ood_pairs.sequences[:8])
        start = time.perf_counter()
        scorer.score_sequences(ood_pairs.sequences)
        row["scoring_sequences_per_second"] = len(ood_pairs.sequences) / (time.perf_counter() - start)
        rows.append(row)
    result = {
        "command": "python benchmarks/long_inputs.py " + " ".join(sys.argv[1:]),
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "bf16_gemm_gflops": peak / 1e9, "load_average": os.getloadavg()},
        "date": datetime.date.today().isoformat(), "settings": vars(args), "rows": rows,
    }
    if args.out:
        write_json(args.out, result)
    print("| max length | cut (train / OOD) | training before, pairs/s | after | gain | MFU after | scoring, seq/s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['max_length']} | {100 * r['cut_train']:.0f}% / {100 * r['cut_ood']:.0f}% | "
              f"{r['before']['pairs_per_second']:.2f} | {r['after']['pairs_per_second']:.2f} | "
              f"{r['training_gain']:.2f}x | {100 * r['training_mfu']:.0f}% | {r['scoring_sequences_per_second']:.1f} |")


if __name__ == "__main__":
    main()
