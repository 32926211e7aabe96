"""The member plan: who trains with which init, learning rate, dropout and data-order seed.

Written to RUN/plan.json before any training, so a run can be resumed, audited and reproduced. Diversity
follows the paper (Ramé et al. 2024, Sec. 3.1): learning rates, dropout and data order vary, the head does not
(it comes from the shared init). Several inits give the Baklava variant (members spread over SFT checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from warm import __version__
from warm.config import TrainConfig
from warm.errors import WarmError
from warm.fileio import sha256_json
from warm.rundir import timestamp

ASSIGNMENTS = ("round-robin", "random")


@dataclass(frozen=True)
class MemberSpec:
    name: str
    init: str
    init_fingerprint: str
    learning_rate: float
    dropout: float
    seed: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def assign(values: tuple, n: int, how: str, rng: np.random.Generator) -> list:
    """Spread `values` over n members: cyclically, or by a seeded draw (with replacement)."""
    if not values:
        raise WarmError("an empty list of values cannot be spread over members")
    if how == "round-robin":
        return [values[i % len(values)] for i in range(n)]
    if how == "random":
        return [values[int(j)] for j in rng.integers(0, len(values), size=n)]
    raise WarmError(f"--assign {how!r}: expected one of {', '.join(ASSIGNMENTS)}")


def make_plan(config: TrainConfig, init_fingerprints: dict[str, str], data_info: dict, training: dict) -> dict:
    """The plan as a JSON-able dict. `plan_hash` covers everything that changes what members learn."""
    if config.members < 1:
        raise WarmError(f"--members {config.members}: need at least 1")
    rng = np.random.default_rng(config.seed)
    inits = [str(Path(p).resolve()) for p in config.init]
    # Learning rate and dropout cycle at different periods so that round-robin mixes them (lr i%3, dropout i%2).
    lrs = assign(config.lr, config.members, config.assign, rng)
    dropouts = assign(config.dropout, config.members, config.assign, rng)
    member_inits = assign(tuple(inits), config.members, "round-robin", rng)
    members = [
        MemberSpec(
            name=f"m{i:02d}",
            init=init,
            init_fingerprint=init_fingerprints[init],
            learning_rate=float(lr),
            dropout=float(dropout),
            seed=config.seed + i,
        ).to_dict()
        for i, (init, lr, dropout) in enumerate(zip(member_inits, lrs, dropouts))
    ]
    body = {"data": data_info, "training": training, "members": members}
    return {"plan_hash": sha256_json(body), **body, "warm_version": __version__, "created": timestamp()}


# Where the run keeps its copy of the data says nothing about what a member learns: left out of member keys so that
# a member trained in one run directory can be reused by another (the experiments' cache relies on it).
_RUN_LOCAL_DATA_FIELDS = ("trained_on",)


def member_key(plan: dict, member: dict) -> str:
    """What a finished member must match to be reused: its own spec, the data and the training settings."""
    data = {k: v for k, v in plan["data"].items() if k not in _RUN_LOCAL_DATA_FIELDS}
    return sha256_json({"data": data, "training": plan["training"], "member": member})


def plan_differences(old: dict, new: dict) -> list[str]:
    """Human-readable top-level differences between two plans (for the refusal message)."""
    diffs = []
    for section in ("data", "training"):
        for key in sorted(set(old.get(section, {})) | set(new.get(section, {}))):
            if old.get(section, {}).get(key) != new.get(section, {}).get(key):
                diffs.append(f"{section}.{key}: {old.get(section, {}).get(key)!r} -> {new.get(section, {}).get(key)!r}")
    old_members, new_members = old.get("members", []), new.get("members", [])
    if len(old_members) != len(new_members):
        diffs.append(f"members: {len(old_members)} -> {len(new_members)}")
    for a, b in zip(old_members, new_members):
        for key in a:
            if a.get(key) != b.get(key):
                diffs.append(f"{a['name']}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return diffs
