"""Write the held-out instructions of the AlpacaEval gold pool as a prompts file for `warm generate`.

The same instructions the experiments hold out from training (warm.experiments.config.PoolData defaults: seed 0,
20% held out), in id order, so generated candidates and the pool's own candidates share their prompts:

    python scripts/pool_prompts.py --n 64 --out runs/bon-generated/prompts.jsonl
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
    parser.add_argument("--n", type=int, default=None, help="the first N held-out instructions (by id); default all")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows = read_pool(args.pool)
    _, _, heldout = split_instructions(rows, defaults.seed, defaults.heldout_fraction, defaults.val_fraction)
    keep = set(heldout[: args.n] if args.n else heldout)
    prompts = {r["instruction_id"]: r["instruction"] for r in rows if r["instruction_id"] in keep}
    path = write_jsonl(args.out, [{"prompt_id": i, "prompt": prompts[i]} for i in sorted(prompts)])
    print(f"wrote {len(prompts)} prompts to {path}")


if __name__ == "__main__":
    main()
