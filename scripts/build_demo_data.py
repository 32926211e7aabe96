"""Build warm's bundled demo preference data from the AlpacaEval gold-scored response pool.

    python scripts/build_demo_data.py            # reads ../shared/data/alpacaeval_gold/responses.jsonl.gz

Writes src/warm/data/demo/{train,test_id,test_ood}.jsonl.gz, stats.json and README.md (the README is generated
here, so its numbers and command are never out of date). The rules are those of shared/README.md: two outputs
of one instruction form a pair, the higher logit(gold) is chosen, near-ties are skipped; generators are split
into a weaker `train` tier and a stronger `ood` tier (the paper's policy drift), instructions into train and
held-out by a seeded draw. Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from warm.data.alpacaeval import PoolSplitSpec, build_splits, read_pool, split_stats
from warm.data.sources import write_jsonl
from warm.fileio import sha256_file, write_json

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / ".." / "shared" / "data" / "alpacaeval_gold" / "responses.jsonl.gz"
DEFAULT_OUT = REPO / "src" / "warm" / "data" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="responses.jsonl.gz of the gold pool")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test-id", type=int, default=1000)
    parser.add_argument("--n-test-ood", type=int, default=1000)
    parser.add_argument("--heldout-fraction", type=float, default=0.2, help="share of instructions held out")
    parser.add_argument("--tier-threshold", type=float, default=0.06, help="mean gold below this: train tier")
    parser.add_argument("--min-gap", type=float, default=0.5, help="skip pairs with |logit gold gap| below this")
    parser.add_argument("--max-per-generator", type=int, default=2, help="pairs per generator per instruction")
    args = parser.parse_args()

    specs = [PoolSplitSpec("train", "train", "train", args.n_train),
             PoolSplitSpec("test_id", "train", "heldout", args.n_test_id),
             PoolSplitSpec("test_ood", "ood", "heldout", args.n_test_ood)]
    built = build_splits(read_pool(args.source), specs, seed=args.seed, heldout_fraction=args.heldout_fraction,
                         tier_threshold=args.tier_threshold, min_gap=args.min_gap,
                         max_per_generator=args.max_per_generator)
    stats: dict = {"splits": {}}
    for spec in specs:
        pairs = built["splits"][spec.name]
        if len(pairs) < spec.n_pairs:
            print(f"warning: {spec.name}: only {len(pairs)} pairs available, {spec.n_pairs} asked")
        path = write_jsonl(args.out_dir / f"{spec.name}.jsonl.gz", pairs)
        stats["splits"][spec.name] = {"file": path.name, "bytes": path.stat().st_size, "generator_tier": spec.tier,
                                      **split_stats(pairs)}
        print(f"wrote {path} ({len(pairs)} pairs, {path.stat().st_size / 1e6:.2f} MB)")

    command = (f"python scripts/build_demo_data.py --seed {args.seed} --n-train {args.n_train} "
               f"--n-test-id {args.n_test_id} --n-test-ood {args.n_test_ood} --heldout-fraction "
               f"{args.heldout_fraction} --tier-threshold {args.tier_threshold} --min-gap {args.min_gap} "
               f"--max-per-generator {args.max_per_generator}")
    stats.update({
        "command": command,
        "source": "shared/data/alpacaeval_gold/responses.jsonl.gz",
        "source_sha256": sha256_file(args.source),
        "generators": built["generators"],
        "train_instruction_ids": built["train_instruction_ids"],
        "heldout_instruction_ids": built["heldout_instruction_ids"],
    })
    os.chmod(write_json(args.out_dir / "stats.json", stats), 0o644)  # write_json's temp file is private (0600)
    readme = args.out_dir / "README.md"
    readme.write_text(render_readme(stats, args), encoding="utf-8")
    print(f"wrote {args.out_dir / 'stats.json'} and {readme}")


def render_readme(stats: dict, args: argparse.Namespace) -> str:
    table = "\n".join(
        f"| {name} | {s['generator_tier']} | {s['n_pairs']} | {s['n_instructions']} | {s['n_generators']} | "
        f"{s['longer_answer_wins']:.1%} | {s['chosen_is_shorter']:.1%} | {s['bytes'] / 1e6:.2f} MB |"
        for name, s in stats["splits"].items()
    )
    n_train, n_ood = len(stats["generators"]["train"]), len(stats["generators"]["ood"])
    return f"""# warm demo data

Preference pairs between real chat-model answers, labelled by a known gold reward, small enough to ship with
warm (`warm.data.demo.demo_path("train" | "test_id" | "test_ood")`). Built by `scripts/build_demo_data.py` from
the AlpacaEval gold pool in `shared/data/alpacaeval_gold/`; generated, do not edit by hand.

## What it is

Each row is one instruction from AlpacaEval and two answers to it by different chat models (2023-2024). The
gold score of an answer is the probability, from a GPT-4-turbo judge, that it beats a fixed strong reference
answer (the weighted AlpacaEval 2.0 annotator). `chosen` is the answer with the higher `logit(gold)` (gold
clipped to [1e-6, 1 - 1e-6]); pairs whose logits differ by less than {args.min_gap} are skipped as near-ties.

Fields: `prompt` (the instruction), `chosen`, `rejected` (full answers, untrimmed), and metadata `instruction_id`,
`chosen_generator`, `rejected_generator`, `chosen_gold`, `rejected_gold`.

## Splits

Generators are split by mean gold: below {args.tier_threshold} is the `train` tier ({n_train} older, weaker models),
the rest the `ood` tier ({n_ood} newer, stronger models), a distribution shift like the policy drift of the WARM
paper. Instructions are split by a seeded draw: {1 - args.heldout_fraction:.0%} for training, \
{args.heldout_fraction:.0%} held out.

- `train`: train-tier pairs on training instructions.
- `test_id`: train-tier pairs on held-out instructions (in distribution).
- `test_ood`: ood-tier pairs on held-out instructions (out of distribution).

Pairs are dealt round-robin over instructions (each instruction gets the same number, give or take one, and the
first rows of a file already span many instructions); within an instruction, generator pairs are drawn without
replacement and a generator appears in at most {args.max_per_generator} pairs of that instruction.

| split | generators | pairs | instructions | generators used | longer answer wins | chosen is shorter | size |
| --- | --- | --- | --- | --- | --- | --- | --- |
{table}

The judge favours longer answers: "the longer answer wins" (character length, ties counted half) is the baseline
to report beside any reward model's accuracy, together with accuracy on the length-adversarial pairs (those
where the chosen answer is the shorter one). `stats.json` holds these numbers, the generator tiers and the
instruction ids of each side.

## Rebuild

From the repository root (reads `../shared/data/alpacaeval_gold/responses.jsonl.gz`; same arguments, same bytes):

```
{stats['command']}
```

## License and citation

CC BY-NC 4.0 (research use), as the AlpacaEval leaderboard annotations it comes from
(tatsu-lab/alpaca_eval, `results/*/weighted_alpaca_eval_gpt4_turbo/annotations.json`). Cite:

- Dubois et al., "AlpacaFarm: A Simulation Framework for Methods that Learn from Human Feedback", NeurIPS 2023
  (arXiv:2305.14387).
- Dubois et al., "Length-Controlled AlpacaEval: A Simple Way to Debias Automatic Evaluators", 2024
  (arXiv:2404.04475).
"""


if __name__ == "__main__":
    main()
