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
import gzip
import json
import math
import os
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from warm.data.sources import write_jsonl
from warm.fileio import sha256_file, write_json

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / ".." / "shared" / "data" / "alpacaeval_gold" / "responses.jsonl.gz"
DEFAULT_OUT = REPO / "src" / "warm" / "data" / "demo"


def logit(gold: float) -> float:
    p = min(max(gold, 1e-6), 1 - 1e-6)  # gold can be exactly 0 or 1
    return math.log(p / (1 - p))


def generator_tiers(rows: list[dict], threshold: float) -> dict[str, str]:
    """'train' for generators whose mean gold is below `threshold` (older, weaker models), else 'ood'."""
    golds: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        golds[row["generator"]].append(row["gold"])
    return {gen: ("train" if np.mean(values) < threshold else "ood") for gen, values in sorted(golds.items())}


def sample_pairs(outputs: dict, instruction_ids: list[int], n: int, rng: np.random.Generator,
                 min_gap: float, max_per_generator: int) -> list[dict]:
    """Up to `n` pairs, dealt round-robin over instructions so each gets the same number (give or take one).

    Per instruction the candidate pairs (all generator pairs with |logit gap| >= min_gap) are shuffled and drawn
    without replacement, skipping a pair whose generator already appears `max_per_generator` times for that
    instruction, so no single answer dominates an instruction's pairs.
    """
    queues = {}
    for iid in instruction_ids:
        cands = [(a, b) for a, b in combinations(outputs[iid], 2) if abs(a["logit"] - b["logit"]) >= min_gap]
        queues[iid] = [cands[i] for i in rng.permutation(len(cands))]
    used = {iid: Counter() for iid in instruction_ids}
    active = [instruction_ids[i] for i in rng.permutation(len(instruction_ids))]
    pairs: list[dict] = []
    while len(pairs) < n and active:
        next_round = []
        for iid in active:
            if len(pairs) == n:
                break
            pair = _pop_pair(queues[iid], used[iid], max_per_generator)
            if pair is not None:
                pairs.append(_pair_row(iid, *pair))
                next_round.append(iid)
        active = next_round
    return pairs


def _pop_pair(queue: list, used: Counter, cap: int):
    for k, (a, b) in enumerate(queue):
        if used[a["generator"]] < cap and used[b["generator"]] < cap:
            used[a["generator"]] += 1
            used[b["generator"]] += 1
            return queue.pop(k)
    return None


def _pair_row(iid: int, a: dict, b: dict) -> dict:
    hi, lo = (a, b) if a["logit"] > b["logit"] else (b, a)
    return {"prompt": a["instruction"], "chosen": hi["output"], "rejected": lo["output"], "instruction_id": iid,
            "chosen_generator": hi["generator"], "rejected_generator": lo["generator"],
            "chosen_gold": hi["gold"], "rejected_gold": lo["gold"]}


def split_stats(pairs: list[dict]) -> dict:
    """Counts and the length baselines: the judge favours longer answers (shared/README.md)."""
    longer = [1.0 if len(p["chosen"]) > len(p["rejected"]) else 0.5 if len(p["chosen"]) == len(p["rejected"]) else 0.0
              for p in pairs]
    gaps = [abs(logit(p["chosen_gold"]) - logit(p["rejected_gold"])) for p in pairs]
    return {
        "n_pairs": len(pairs),
        "n_instructions": len({p["instruction_id"] for p in pairs}),
        "n_generators": len({g for p in pairs for g in (p["chosen_generator"], p["rejected_generator"])}),
        "longer_answer_wins": round(float(np.mean(longer)), 4),
        "chosen_is_shorter": round(float(np.mean([len(p["chosen"]) < len(p["rejected"]) for p in pairs])), 4),
        "mean_abs_logit_gap": round(float(np.mean(gaps)), 3),
    }


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

    with gzip.open(args.source, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    tiers = generator_tiers(rows, args.tier_threshold)
    outputs: dict[str, dict[int, list[dict]]] = {"train": defaultdict(list), "ood": defaultdict(list)}
    for row in sorted(rows, key=lambda r: (r["instruction_id"], r["generator"])):
        outputs[tiers[row["generator"]]][row["instruction_id"]].append({**row, "logit": logit(row["gold"])})

    ids = sorted({row["instruction_id"] for row in rows})
    order = np.random.default_rng(args.seed).permutation(len(ids))
    n_heldout = round(args.heldout_fraction * len(ids))
    heldout = sorted(ids[i] for i in order[:n_heldout])
    train_ids = sorted(ids[i] for i in order[n_heldout:])

    plan = {"train": ("train", train_ids, args.n_train), "test_id": ("train", heldout, args.n_test_id),
            "test_ood": ("ood", heldout, args.n_test_ood)}
    stats: dict = {"splits": {}}
    for k, (name, (tier, instruction_ids, n)) in enumerate(plan.items()):
        rng = np.random.default_rng([args.seed, k + 1])  # one stream per split: resizing one leaves the others
        pairs = sample_pairs(outputs[tier], instruction_ids, n, rng, args.min_gap, args.max_per_generator)
        if len(pairs) < n:
            print(f"warning: {name}: only {len(pairs)} pairs available, {n} asked")
        path = write_jsonl(args.out_dir / f"{name}.jsonl.gz", pairs)
        stats["splits"][name] = {"file": path.name, "bytes": path.stat().st_size, "generator_tier": tier,
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
        "generators": {tier: [g for g, t in tiers.items() if t == tier] for tier in ("train", "ood")},
        "train_instruction_ids": train_ids,
        "heldout_instruction_ids": heldout,
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
