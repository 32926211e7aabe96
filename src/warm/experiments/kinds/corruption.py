"""Label corruption (Ramé et al. 2024, Sec. 5 and Fig. 4): WA memorises swapped labels less than ENS.

`corruption`: one corruption level (25% in the paper); members, WA and ENS on corrupted-train, clean-train, ID
and OOD pairs, paired WA - ENS intervals, and a histogram of per-pair WA-minus-ENS reward-margin differences.
`corruption_sweep`: several levels (0, 10, 25, 40%; the paper stops at 25%), members, WA and ENS on ID and OOD.
Members are trained in the memorisation regime (several epochs over few pairs), else nothing is memorised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warm.experiments import analysis
from warm.experiments.kinds.common import (
    MemberGroup, diff_pct, eval_splits, evaluate_scorers, parse_params, pct, train_group, verdict,
)
from warm.experiments.workspace import Workspace


@dataclass(frozen=True)
class CorruptionParams:
    group: dict = field(default_factory=dict)  # MemberGroup fields
    fractions: tuple[float, ...] = (0.25,)
    corrupt_seed: int = 0
    histogram_bins: int = 40


def _params(params: dict, kind: str) -> tuple[CorruptionParams, MemberGroup]:
    p = parse_params(CorruptionParams, params, kind)
    return p, parse_params(MemberGroup, p.group, f"{kind}.group")


def _one_level(ws: Workspace, group: MemberGroup, fraction: float, seed: int) -> dict:
    members = train_group(ws, group, corrupt=fraction, corrupt_seed=seed)
    warm_dir = ws.merged(members)
    names = {f"m{i:02d}": m for i, m in enumerate(members)}
    result = {"fraction": fraction, "members": {k: str(v) for k, v in names.items()}, "warm": str(warm_dir), "splits": {}}
    for split, (source, limit) in eval_splits(ws, members).items():
        m = evaluate_scorers(ws, source, limit, names, {"WA": warm_dir}, {"ENS": list(names)})
        correct, masks = m["_correct"], m["_masks"]
        best = max(names, key=lambda n: m["scorers"][n]["all"]["accuracy"])
        m["comparisons"] = {
            "WA - ENS": analysis.compare(correct["WA"], correct["ENS"], masks, ws.config.n_boot, ws.config.seed),
            "WA - best member": {**analysis.compare(correct["WA"], correct[best], masks, ws.config.n_boot, ws.config.seed),
                                 "best_member": best},
        }
        m["_margin_diff"] = analysis.margin_difference(m["_scores"]["WA"], m["_scores"]["ENS"])
        m["reward_correlation_m00_m01"] = (analysis.reward_correlation(m["_scores"]["m00"], m["_scores"]["m01"])
                                           if len(names) > 1 else None)
        result["splits"][split] = m
    return result


def _histograms(level: dict, bins: int) -> dict:
    """Per-subset histograms of WA-minus-ENS margin differences (shared bin edges across subsets)."""
    groups = {}
    for split, m in level["splits"].items():
        for subset in ("corrupted", "clean", "all"):
            mask = m["_masks"].get(subset)
            if mask is None or (split == "train" and subset == "all") or (split != "train" and subset != "all"):
                continue
            groups[f"{split} {subset}" if split == "train" else split] = m["_margin_diff"][mask]
    values = np.concatenate(list(groups.values()))
    edges = np.linspace(np.quantile(values, 0.005), np.quantile(values, 0.995), bins + 1)
    return {"edges": edges.tolist(),
            "groups": {name: {"counts": np.histogram(v, bins=edges)[0].tolist(), "mean": float(v.mean()),
                              "median": float(np.median(v)), "n": int(v.size)} for name, v in groups.items()}}


def run(ws: Workspace, params: dict, kind: str) -> dict:
    p, group = _params(params, kind)
    levels = [_one_level(ws, group, fraction, p.corrupt_seed) for fraction in p.fractions]
    metrics = {"params": {"fractions": list(p.fractions), "corrupt_seed": p.corrupt_seed, "group": group.__dict__},
               "levels": levels}
    if kind == "corruption":
        metrics["histogram"] = _histograms(levels[0], p.histogram_bins)
    return metrics


# Paper expectations (Fig. 4 / Sec. 5) as (split, subset, expected sign of WA - ENS).
EXPECTED = [("train", "corrupted", -1, "on corrupted training pairs WA is clearly below ENS (memorises less)"),
            ("train", "clean", -1, "on clean training pairs WA <= ENS"),
            ("id", "all", 0, "in distribution WA ≈ ENS"),
            ("ood", "all", 1, "out of distribution WA >= ENS")]


def markdown(metrics: dict, kind: str) -> str:
    lines = []
    for level in metrics["levels"]:
        lines.append(f"\n### {100 * level['fraction']:.0f}% corrupted labels\n")
        lines.append("| scorer | " + " | ".join(_columns(level)) + " |")
        lines.append("| --- |" + " ---: |" * len(_columns(level)))
        scorers = list(next(iter(level["splits"].values()))["scorers"])
        for name in ["length baseline"] + scorers:
            cells = []
            for split, subset in _cells(level):
                m = level["splits"][split]
                summary = m["length_baseline"].get(subset) if name == "length baseline" else m["scorers"][name].get(subset)
                cells.append(pct(summary))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("\n| comparison | " + " | ".join(_columns(level)) + " |")
        lines.append("| --- |" + " ---: |" * len(_columns(level)))
        for comp in ("WA - ENS", "WA - best member"):
            cells = [diff_pct(level["splits"][s]["comparisons"][comp].get(sub)) for s, sub in _cells(level)]
            lines.append(f"| {comp} | " + " | ".join(cells) + " |")
        if level["fraction"] > 0:
            lines.append("\n| paper's finding | WA − ENS [95% CI] | verdict |\n| --- | ---: | --- |")
            for split, subset, sign, text in EXPECTED:
                d = level["splits"][split]["comparisons"]["WA - ENS"].get(subset)
                lines.append(f"| {text} | {diff_pct(d)} | {verdict(d, sign)} |")
    return "\n".join(lines) + "\n"


def _cells(level: dict) -> list[tuple[str, str]]:
    cells = []
    for split, m in level["splits"].items():
        subsets = ["corrupted", "clean"] if "corrupted" in m["subset_sizes"] else ["all"]
        cells += [(split, s) for s in subsets] + [(split, "length_adversarial"), (split, "length_balanced")]
    return cells


def _columns(level: dict) -> list[str]:
    return [f"{split} {subset.replace('_', '-')} (n={level['splits'][split]['subset_sizes'][subset]})"
            for split, subset in _cells(level)]


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    from warm.report.figures import plot_curves

    paths = []
    if kind == "corruption_sweep":
        panels = {}
        for split in ("id", "ood"):
            series = []
            names = list(metrics["levels"][0]["splits"][split]["scorers"])
            for name in names:
                xs = [100 * lv["fraction"] for lv in metrics["levels"]]
                acc = [lv["splits"][split]["scorers"][name]["all"] for lv in metrics["levels"]]
                series.append({"label": name, "x": xs, "y": [100 * a["accuracy"] for a in acc],
                               "lo": [100 * a["lo"] for a in acc], "hi": [100 * a["hi"] for a in acc],
                               "style": {"linestyle": "-" if name in ("WA", "ENS") else ":", "marker": "o"}})
            panels[split.upper()] = series
        paths.append(plot_curves(panels, "corrupted labels (%)", "pairwise accuracy (%)", out_dir / "sweep.png"))
    if "histogram" in metrics:
        paths.append(_plot_histogram(metrics["histogram"], out_dir / "wa_minus_ens_margin.png"))
    return paths


def _plot_histogram(hist: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from warm.report.figures import save_figure

    edges = np.asarray(hist["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(3.2 * len(hist["groups"]), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(hist["groups"]), sharex=True, squeeze=False)[0]
    for ax, (name, g) in zip(axes, hist["groups"].items()):
        ax.bar(centers, g["counts"], width=edges[1] - edges[0], color="tab:blue", alpha=0.7)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{name} (median {g['median']:+.3f})", fontsize=9)
        ax.set_xlabel("WA − ENS reward margin")
    return save_figure(fig, path)
