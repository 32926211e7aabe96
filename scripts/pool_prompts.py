"""Write instructions of the AlpacaEval gold pool as a prompts file for `warm generate`, `warm rl`, `warm winrate`.

The same instruction split as the experiments (warm.experiments.config.PoolData defaults: seed 0, 20% held out), in
id order: `--split heldout` (default) gives the held-out instructions, so generated candidates and the pool's own
candidates share their prompts; `--split train` the others (training and validation), the RL training prompts:

    python scripts/pool_prompts.py --n 64 --out runs/bon-generated/prompts.jsonl
    python scripts/pool_prompts.py --split train --max-chars 400 --out runs/rl/train_prompts.jsonl

`--max-chars` drops long instructions (RL back-propagates through prompt + response: on a CPU the longest pool
instructions, ~450 tokens, ran two 1-thread RL processes out of 24 GiB).
"""

from __future__ import annotations

import argparse

from warm.data.alpacaeval import read_pool, split_instructions
from warm.data.sources import write_jsonl
from warm.experiments.config import PoolData


def main(argv: list[str] | None = None) -> None:
    defaults = PoolData()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default=defaults.source)
    parser.add_argument("--split", choices=("heldout", "train"), default="heldout",
                        help="held-out instructions, or the training and validation ones")
    parser.add_argument("--max-chars", type=int, default=None, help="keep instructions of at most this many characters")
    parser.add_argument("--n", type=int, default=None, help="the first N instructions (by id); default all")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows = read_pool(args.pool)
    train, val, heldout = split_instructions(rows, defaults.seed, defaults.heldout_fraction, defaults.val_fraction)
    chosen = heldout if args.split == "heldout" else sorted(train + val)
    if args.max_chars:
        text = {r["instruction_id"]: r["instruction"] for r in rows}
        chosen = [i for i in chosen if len(text[i]) <= args.max_chars]
    keep = set(chosen[: args.n] if args.n else chosen)
    prompts = {r["instruction_id"]: r["instruction"] for r in rows if r["instruction_id"] in keep}
    path = write_jsonl(args.out, [{"prompt_id": i, "prompt": prompts[i]} for i in sorted(prompts)])
    print(f"wrote {len(prompts)} prompts to {path}")


if __name__ == "__main__":
    main()
