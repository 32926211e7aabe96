"""Pieces the experiment kinds share: params parsing, member groups, and per-split evaluation of scorers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from warm.config import from_dict
from warm.experiments import analysis
from warm.experiments.workspace import Workspace
from warm.rundir import TrainRun

P = TypeVar("P")


def parse_params(cls: type[P], params: dict[str, Any], kind: str) -> P:
    return from_dict(cls, params, f"params of {kind}")


@dataclass(frozen=True)
class MemberGroup:
    """M members from one init: learning rate and dropout cycle over their lists, member i has data seed i."""

    members: int = 4
    lr: tuple[float, ...] = (1e-5, 4e-5, 1e-4)
    dropout: tuple[float, ...] = (0.05, 0.1)
    epochs: float | None = None  # None: the config's training.epochs


def train_group(ws: Workspace, group: MemberGroup, *, corrupt: float = 0.0, corrupt_seed: int = 0,
                init: Path | None = None) -> list[Path]:
    init = init or ws.init()
    data = ws.data_files()["train"]
    return [ws.member(init, data, group.lr[i % len(group.lr)], group.dropout[i % len(group.dropout)], seed=i,
                      epochs=group.epochs, corrupt=corrupt, corrupt_seed=corrupt_seed)
            for i in range(group.members)]


def best_by_validation(ws: Workspace, names: dict[str, Path]) -> tuple[dict[str, float], str]:
    """(validation accuracy per member, the best member's name; ties go to the later name)."""
    val_acc = {n: float(analysis.correct(ws.pair_scores(m, "val")).mean()) for n, m in names.items()}
    return val_acc, max(val_acc, key=lambda n: (val_acc[n], n))


def trained_on(member: Path) -> Path:
    """The pairs a member was trained on (after corruption), saved by `warm train` beside its run."""
    return TrainRun.of_member(member).data_file


def eval_splits(ws: Workspace, members: list[Path]) -> dict[str, tuple[str, int | None]]:
    """Split name -> (workspace split or file, limit): the trained pairs, in and out of distribution."""
    return {"train": (str(trained_on(members[0])), ws.config.eval_train_pairs),
            "id": ("test_id", None), "ood": ("test_ood", None)}


def evaluate_scorers(ws: Workspace, split: str, limit: int | None, members: dict[str, Path],
                     extra_models: dict[str, Path], ensembles: dict[str, list[str]]) -> dict:
    """Accuracies of members, extra models (e.g. WARM) and ensembles of members on one split, per subset.

    Returns {"n_pairs", "length_baseline", "scorers": {name: {subset: summary}}, "_correct": {name: per-pair},
    "_scores": {name: (chosen, rejected)}} (keys starting with "_" are dropped before writing JSON).
    """
    cfg = ws.config
    data = ws.split(split, limit)
    masks = analysis.subset_masks(data)
    scores = {name: ws.pair_scores(path, split, limit) for name, path in {**members, **extra_models}.items()}
    for name, member_names in ensembles.items():
        scores[name] = analysis.ensemble([scores[m] for m in member_names])
    correct = {name: analysis.correct(s) for name, s in scores.items()}
    return {
        "n_pairs": len(data),
        "subset_sizes": {k: int(v.sum()) for k, v in masks.items()},
        "length_baseline": analysis.length_baseline(data, masks, cfg.n_boot, cfg.seed),
        "scorers": {name: analysis.summarize(c, masks, cfg.n_boot, cfg.seed) for name, c in correct.items()},
        "_masks": masks,
        "_correct": correct,
        "_scores": scores,
    }


def public(metrics: Any) -> Any:
    """Drop the private per-pair arrays (keys starting with '_') before writing JSON."""
    if isinstance(metrics, dict):
        return {k: public(v) for k, v in metrics.items() if not str(k).startswith("_")}
    if isinstance(metrics, list):
        return [public(v) for v in metrics]
    if isinstance(metrics, np.generic):
        return metrics.item()
    return metrics


def pct(summary: dict | None) -> str:
    if not summary or summary.get("accuracy") is None:
        return "–"
    return f"{100 * summary['accuracy']:.1f} [{100 * summary['lo']:.1f}, {100 * summary['hi']:.1f}]"


def diff_pct(diff: dict | None) -> str:
    if not diff:
        return "–"
    return f"{100 * diff['diff']:+.1f} [{100 * diff['lo']:+.1f}, {100 * diff['hi']:+.1f}]"


def verdict(diff: dict | None, expected_sign: int) -> str:
    """agree / disagree / inconclusive for a paired interval against the paper's expected direction.

    expected_sign: +1 (a > b expected), -1 (a < b expected), 0 (a ≈ b expected: agree if the interval holds 0).
    """
    if not diff:
        return "–"
    lo, hi = diff["lo"], diff["hi"]
    if expected_sign == 0:
        return "agree" if lo <= 0 <= hi else "disagree"
    if lo <= 0 <= hi:
        return "inconclusive"
    return "agree" if (lo > 0) == (expected_sign > 0) else "disagree"
