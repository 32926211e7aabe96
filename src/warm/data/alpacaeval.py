"""Preference splits from the AlpacaEval gold-scored response pool (shared/data/alpacaeval_gold).

The rules are those of shared/README.md: two outputs of one instruction form a pair and the higher logit(gold)
is chosen; near-ties are skipped; generators split into a weaker `train` tier and a stronger `ood` tier (the WARM
paper's policy drift); instructions split into training and held-out ones by a seeded draw. Used by
scripts/build_demo_data.py (the bundled demo data) and by the experiments (larger splits, built on the fly).

The judge favours longer answers, so a split can be drawn *length-balanced*: half of its pairs have the shorter
answer chosen, which makes "the longer answer wins" score 50% on it.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from warm.errors import WarmError


@dataclass(frozen=True)
class PoolSplitSpec:
    name: str
    tier: str  # "train" or "ood": which generators' answers are paired
    instructions: str  # "train", "val" (a held-back part of the training instructions) or "heldout"
    n_pairs: int
    length_balanced: bool = False


def logit(gold: float) -> float:
    p = min(max(gold, 1e-6), 1 - 1e-6)  # gold can be exactly 0 or 1
    return math.log(p / (1 - p))


def read_pool(source: str | Path) -> list[dict]:
    source = Path(source)
    if not source.exists():
        raise WarmError(f"{source}: the AlpacaEval gold pool is missing (see shared/README.md)")
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def generator_tiers(rows: list[dict], threshold: float = 0.06) -> dict[str, str]:
    """'train' for generators whose mean gold is below `threshold` (older, weaker models), else 'ood'."""
    golds: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        golds[row["generator"]].append(row["gold"])
    return {gen: ("train" if np.mean(values) < threshold else "ood") for gen, values in sorted(golds.items())}


def split_instructions(rows: list[dict], seed: int, heldout_fraction: float,
                       val_fraction: float = 0.0) -> tuple[list[int], list[int], list[int]]:
    """(training, validation, held-out instruction ids), by a seeded draw.

    Validation instructions come out of the training side (the first `val_fraction` of it in draw order), so
    the held-out set is the same whatever the validation share.
    """
    ids = sorted({row["instruction_id"] for row in rows})
    order = np.random.default_rng(seed).permutation(len(ids))
    n_heldout = round(heldout_fraction * len(ids))
    rest = order[n_heldout:]
    n_val = round(val_fraction * len(rest))
    return (sorted(ids[i] for i in rest[n_val:]), sorted(ids[i] for i in rest[:n_val]),
            sorted(ids[i] for i in order[:n_heldout]))


def outputs_by_tier(rows: list[dict], tiers: dict[str, str]) -> dict[str, dict[int, list[dict]]]:
    outputs: dict[str, dict[int, list[dict]]] = {"train": defaultdict(list), "ood": defaultdict(list)}
    for row in sorted(rows, key=lambda r: (r["instruction_id"], r["generator"])):
        outputs[tiers[row["generator"]]][row["instruction_id"]].append({**row, "logit": logit(row["gold"])})
    return outputs


def sample_pairs(outputs: dict, instruction_ids: list[int], n: int, rng: np.random.Generator,
                 min_gap: float, max_per_generator: int, keep=None) -> list[dict]:
    """Up to `n` pairs, dealt round-robin over instructions so each gets the same number (give or take one).

    Per instruction the candidate pairs (all generator pairs with |logit gap| >= min_gap, and `keep(a, b)` if
    given) are shuffled and drawn without replacement, skipping a pair whose generator already appears
    `max_per_generator` times for that instruction, so no single answer dominates an instruction's pairs.
    """
    queues = {}
    for iid in instruction_ids:
        cands = [(a, b) for a, b in combinations(outputs[iid], 2)
                 if abs(a["logit"] - b["logit"]) >= min_gap and (keep is None or keep(a, b))]
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


def _chosen_is_shorter(a: dict, b: dict) -> bool:
    hi, lo = (a, b) if a["logit"] > b["logit"] else (b, a)
    return len(hi["output"]) < len(lo["output"])


def build_splits(rows: list[dict], specs: list[PoolSplitSpec], seed: int = 0, heldout_fraction: float = 0.2,
                 tier_threshold: float = 0.06, min_gap: float = 0.5, max_per_generator: int = 2,
                 val_fraction: float = 0.0) -> dict:
    """{"splits": {name: [pair rows]}, "generators": ..., "train_instruction_ids": ..., "heldout_instruction_ids": ...}.

    Each split draws from its own random stream (seeded by its position), so resizing one leaves the others as
    they were. A length-balanced split draws half its pairs with the shorter answer chosen, half with the longer.
    """
    tiers = generator_tiers(rows, tier_threshold)
    outputs = outputs_by_tier(rows, tiers)
    train_ids, val_ids, heldout = split_instructions(rows, seed, heldout_fraction, val_fraction)
    by_side = {"train": train_ids, "val": val_ids, "heldout": heldout}
    splits = {}
    for k, spec in enumerate(specs):
        if spec.instructions not in by_side:
            raise WarmError(f"split {spec.name}: instructions must be train, val or heldout, not {spec.instructions!r}")
        ids = by_side[spec.instructions]
        rng = np.random.default_rng([seed, k + 1])
        if spec.length_balanced:
            half = spec.n_pairs // 2
            shorter = sample_pairs(outputs[spec.tier], ids, half, rng, min_gap, max_per_generator, _chosen_is_shorter)
            longer = sample_pairs(outputs[spec.tier], ids, spec.n_pairs - half, rng, min_gap, max_per_generator,
                                  lambda a, b: not _chosen_is_shorter(a, b))
            pairs = [p for pair in zip(shorter, longer) for p in pair]  # interleaved: any prefix stays balanced
        else:
            pairs = sample_pairs(outputs[spec.tier], ids, spec.n_pairs, rng, min_gap, max_per_generator)
        splits[spec.name] = pairs
    return {
        "splits": splits,
        "generators": {tier: [g for g, t in tiers.items() if t == tier] for tier in ("train", "ood")},
        "train_instruction_ids": train_ids,
        "val_instruction_ids": val_ids,
        "heldout_instruction_ids": heldout,
    }


def split_stats(pairs: list[dict]) -> dict:
    """Counts and the length baselines: the judge favours longer answers (shared/README.md)."""
    longer = [1.0 if len(p["chosen"]) > len(p["rejected"]) else 0.5 if len(p["chosen"]) == len(p["rejected"]) else 0.0
              for p in pairs]
    gaps = [abs(logit(p["chosen_gold"]) - logit(p["rejected_gold"])) for p in pairs]
    return {
        "n_pairs": len(pairs),
        "n_instructions": len({p["instruction_id"] for p in pairs}),
        "n_generators": len({g for p in pairs for g in (p["chosen_generator"], p["rejected_generator"])}),
        "longer_answer_wins": round(float(np.mean(longer)), 4) if pairs else None,
        "chosen_is_shorter": round(float(np.mean([len(p["chosen"]) < len(p["rejected"]) for p in pairs])), 4) if pairs else None,
        "mean_abs_logit_gap": round(float(np.mean(gaps)), 3) if pairs else None,
    }
