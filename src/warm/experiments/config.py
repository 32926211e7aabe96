"""Experiment configs: one YAML file per paper figure under experiments/, strictly parsed.

Every section is a frozen dataclass and unknown keys are an error, so a misspelled option fails before hours
of training rather than being silently ignored. `scale` multiplies pair counts (a GPU run uses --scale 4, say).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warm.config import from_dict
from warm.errors import WarmError

DEFAULT_POOL = "../shared/data/alpacaeval_gold/responses.jsonl.gz"


@dataclass(frozen=True)
class PoolData:
    """Splits drawn from the gold-scored AlpacaEval pool (warm.data.alpacaeval)."""

    source: str = DEFAULT_POOL
    seed: int = 0
    n_train: int = 1000
    n_val: int = 500
    n_test: int = 3000  # per test split; the length-balanced subset is about half of it
    heldout_fraction: float = 0.2
    val_fraction: float = 0.1
    length_balanced_train: bool = False


@dataclass(frozen=True)
class Training:
    model: str = "packaged:all-MiniLM-L6-v2"
    head_seed: int = 0
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.1
    precision: str = "auto"


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    kind: str
    data: PoolData = field(default_factory=PoolData)
    training: Training = field(default_factory=Training)
    params: dict[str, Any] = field(default_factory=dict)  # checked by the experiment kind's own dataclass
    eval_train_pairs: int = 500  # how many training pairs to evaluate on (memorisation, corrupted/clean)
    n_boot: int = 1000
    seed: int = 0


def load_experiment(path: str | Path, scale: float = 1.0) -> ExperimentConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarmError(f"{path}: experiment config not found") from None
    except yaml.YAMLError as exc:
        raise WarmError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise WarmError(f"{path}: expected a mapping at the top level")
    raw = dict(raw)
    data = from_dict(PoolData, raw.pop("data", {}) or {}, f"{path}: data")
    training = from_dict(Training, raw.pop("training", {}) or {}, f"{path}: training")
    config = from_dict(ExperimentConfig, {**raw, "data": data, "training": training}, str(path))
    if scale != 1.0:
        if scale <= 0:
            raise WarmError(f"--scale {scale}: must be positive")
        data = dataclasses.replace(data, n_train=round(data.n_train * scale), n_val=round(data.n_val * scale),
                                   n_test=round(data.n_test * scale))
        config = dataclasses.replace(config, data=data, eval_train_pairs=round(config.eval_train_pairs * scale))
    return config
