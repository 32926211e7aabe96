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
from warm.train.fit import FitSettings
from warm.rundir import timestamp

ASSIGNMENTS = ("round-robin", "random")


@dataclass(frozen=True)
class TrainingSettings:
    """The plan's `training` section: what every member shares that changes what it learns (so it is hashed).

    The one typed form of these settings between `warm train`'s options and one member's fit: built from the
    TrainConfig (`from_config`), written into plan.json (`to_plan`), read back by each member (`from_plan`), which
    turns it into its fit's settings (`fit_settings`). Optional sections are absent, not null, when unused, so
    plans written before they existed keep their hash.
    """

    epochs: float
    max_steps: int
    batch_size: int
    max_length: int
    warmup_ratio: float
    weight_decay: float
    contract: dict  # the input contract every member reads and is saved with (warm.data.contract)
    attention_dropout: float
    precision: str  # resolved on the driver: fp32 or bf16
    checkpoints: tuple[float, ...] = ()  # fractions of the run at which members also save a checkpoint
    lora: dict | None = None  # LoRA rank, alpha, dropout and target modules (warm.train.member.lora_settings)

    @classmethod
    def from_config(cls, config: TrainConfig, contract: dict, precision: str, lora: dict | None) -> TrainingSettings:
        if config.checkpoints and not all(0 < f < 1 for f in config.checkpoints):
            raise WarmError(f"--checkpoints {','.join(map(str, config.checkpoints))}: fractions must be in (0, 1)")
        return cls(epochs=config.epochs, max_steps=config.max_steps, batch_size=config.batch_size,
                   max_length=config.max_length, warmup_ratio=config.warmup_ratio, weight_decay=config.weight_decay,
                   contract=contract, attention_dropout=config.attention_dropout, precision=precision,
                   checkpoints=tuple(sorted(config.checkpoints or ())), lora=lora)

    def to_plan(self) -> dict:
        values = dict(self.__dict__)
        values["checkpoints"] = list(self.checkpoints)
        return {k: v for k, v in values.items() if not (k in ("checkpoints", "lora") and not v)}

    @classmethod
    def from_plan(cls, training: dict) -> TrainingSettings:
        return cls(**{**training, "checkpoints": tuple(training.get("checkpoints", ()))})

    def fit_settings(self, member: dict) -> FitSettings:
        return FitSettings(learning_rate=member["learning_rate"], batch_size=self.batch_size, epochs=self.epochs,
                           max_steps=self.max_steps, seed=member["seed"], warmup_ratio=self.warmup_ratio,
                           weight_decay=self.weight_decay, precision=self.precision)


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


def make_plan(config: TrainConfig, init_fingerprints: dict[str, str], data_info: dict,
              training: TrainingSettings) -> dict:
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
    body = {"data": data_info, "training": training.to_plan(), "members": members}
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
