"""The RL benchmark's control reward model, and how it ranks held-out pairs next to the proxies it judges.

RL against a proxy is judged by a control reward model never used for training (Ramé et al. 2024, Sec. 5): it
must know more than any proxy, so it is regressed on logit(gold) of every pool output (both generator tiers,
clean) of the training and validation instructions (`Workspace.control`), where a proxy sees 500 train-tier
pairs with corrupted labels. Reported: pairwise accuracy on the held-out test pairs (in and out of distribution)
of the control, the proxies (single members, WARM M=2/6, ENS M=2) and "the longer answer wins". The control
starts from the proxies' shared init (the config's `training.model`), so it shares their pretraining, which makes
it less independent than the paper's control (the paper insists on a disjoint pretraining).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warm.experiments import analysis
from warm.experiments.kinds.common import (
    MemberGroup, best_by_validation, diff_pct, evaluate_scorers, parse_params, pct, train_group,
)
from warm.experiments.workspace import Workspace
from warm.train.regress import RegressSettings
from warm.rundir import REGRESS_FILE

CONTROL = "control"
SUBSETS = ("all", "length_adversarial", "length_balanced")


@dataclass(frozen=True)
class ControlParams:
    group: dict = field(default_factory=lambda: {"members": 6})  # the proxies' recipe (MemberGroup fields)
    fraction: float = 0.25  # label corruption of the proxies' training pairs
    corrupt_seed: int = 0
    warm_sizes: tuple[int, ...] = (2, 6)
    ens_sizes: tuple[int, ...] = (2,)
    lr: float = 5e-5  # the control's regression
    batch_size: int = 16
    epochs: float = 1.0


def regress_settings(ws: Workspace, p: ControlParams) -> RegressSettings:
    from warm.models.runtime import default_device, resolve_precision

    t = ws.config.training
    return RegressSettings(learning_rate=p.lr, batch_size=p.batch_size, epochs=p.epochs, max_length=t.max_length,
                           seed=ws.config.seed, precision=resolve_precision(t.precision, default_device()))


def run(ws: Workspace, params: dict, kind: str) -> dict:
    from warm.fileio import read_json

    p = parse_params(ControlParams, params, kind)
    group = parse_params(MemberGroup, p.group, f"{kind}.group")
    control = ws.control(regress_settings(ws, p))
    members = train_group(ws, group, corrupt=p.fraction, corrupt_seed=p.corrupt_seed)
    names = {f"m{i:02d}": m for i, m in enumerate(members)}
    val_acc, best = best_by_validation(ws, names)
    warm_dirs = {f"WARM M={k}": ws.merged(members[:k]) for k in p.warm_sizes if 2 <= k <= len(members)}
    ensembles = {f"ENS M={k}": list(names)[:k] for k in p.ens_sizes if 2 <= k <= len(members)}
    splits = {}
    for label, split in (("id", "test_id"), ("ood", "test_ood")):
        m = evaluate_scorers(ws, split, None, names, {CONTROL: control, **warm_dirs}, ensembles)
        m["comparisons"] = {f"control - {other}": analysis.compare(
            m["_correct"][CONTROL], m["_correct"][other], m["_masks"], ws.config.n_boot, ws.config.seed)
            for other in (best, *warm_dirs)}
        splits[label] = m
    meta = read_json(Path(control) / REGRESS_FILE)
    return {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.__dict__.items()},
            "control": {"dir": str(control), "n_examples": meta["n_examples"], "settings": meta["settings"],
                        "target_mean": meta["target_mean"], "target_scale": meta["target_scale"],
                        "metrics": meta["metrics"]},
            "members": {n: str(m) for n, m in names.items()}, "val_accuracy": val_acc, "best_member": best,
            "warm": {k: str(v) for k, v in warm_dirs.items()}, "splits": splits}


def markdown(metrics: dict, kind: str) -> str:
    c = metrics["control"]
    best = metrics["best_member"]
    lines = [f"\nControl: {c['n_examples']} (instruction, output) examples regressed on logit(gold), "
             f"{c['settings']['epochs']:g} epoch(s) at lr {c['settings']['learning_rate']:g}, "
             f"{c['metrics']['wall_seconds'] / 60:.1f} min, final MSE {c['metrics']['final_loss']:.3f} (standard units). "
             f"Proxies: {100 * metrics['params']['fraction']:.0f}% corrupted training labels; best member by "
             f"validation accuracy: {best}. Accuracy % [95% CI] on held-out instructions:\n",
             "| scorer | ID all | ID length-adversarial | ID length-balanced | OOD all | OOD length-adversarial "
             "| OOD length-balanced |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    order = [CONTROL, *metrics["warm"], *[n for n in metrics["splits"]["id"]["scorers"] if n.startswith("ENS")],
             *metrics["members"]]
    for name in order:
        label = f"{name} (best member)" if name == best else name
        cells = [pct(metrics["splits"][s]["scorers"][name].get(sub)) for s in ("id", "ood") for sub in SUBSETS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [pct(metrics["splits"][s]["length_baseline"].get(sub)) for s in ("id", "ood") for sub in SUBSETS]
    lines.append("| the longer answer wins | " + " | ".join(cells) + " |")
    lines.append("\nPaired differences (control − proxy), points [95% CI]:\n")
    lines.append("| comparison | ID all | OOD all |\n| --- | ---: | ---: |")
    for name in metrics["splits"]["id"]["comparisons"]:
        cells = [diff_pct(metrics["splits"][s]["comparisons"][name].get("all")) for s in ("id", "ood")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    return []  # a table is the whole result
