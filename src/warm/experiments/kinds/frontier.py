"""The recipe frontier: WARM's accuracy against the CPU it cost to train, one curve per max length (and LP-init).

For each max length L (and each linear-probe setting), M members train on the training split with checkpoints part
way; at every checkpoint fraction f the weight average (WA) of the members' checkpoints at f is a point whose cost is
f x the members' training CPU time (plus the probe's). Each point is evaluated in and out of distribution beside
"the longer answer wins": its accuracy, its accuracy on the length-adversarial pairs (the chosen answer shorter),
and WA minus the length baseline with a paired bootstrap interval. The goal the recipe is looked for against: WA
above the length baseline out of distribution (interval above 0) and above 55% on the length-adversarial pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warm.metrics import length_baseline_correct
from warm.experiments import analysis
from warm.experiments.kinds.common import MemberGroup, diff_pct, parse_params, pct
from warm.experiments.workspace import Workspace
from warm.fileio import read_json
from warm.rundir import INIT_FILE, MEMBER_FILE

SPLITS = ("test_id", "test_ood")


@dataclass(frozen=True)
class FrontierParams:
    max_lengths: tuple[int, ...] = (128, 256, 384)
    group: dict = field(default_factory=lambda: {"members": 2, "lr": [5e-5, 1e-4], "dropout": [0.1]})
    checkpoints: tuple[float, ...] = (0.125, 0.25, 0.5)
    probe_steps: tuple[int, ...] = (0,)  # 0: no linear probe; N: LP-init with N steps (at the lengths below)
    probe_lengths: tuple[int, ...] = (128,)


def _cpu_seconds(member: Path) -> float:
    return float(read_json(member / MEMBER_FILE)["metrics"]["cpu_seconds"])


def run(ws: Workspace, params: dict, kind: str) -> dict:
    p = parse_params(FrontierParams, params, kind)
    group = parse_params(MemberGroup, p.group, f"{kind}.group")
    cfg = ws.config
    train = ws.data_files()["train"]
    n_train = len(ws.split("train"))
    baselines, masks, length_correct = {}, {}, {}
    for split in SPLITS:
        data = ws.split(split)
        masks[split] = analysis.subset_masks(data)
        length_correct[split] = length_baseline_correct(data.chosen_texts(), data.rejected_texts())
        baselines[split] = analysis.length_baseline(data, masks[split], cfg.n_boot, cfg.seed)
    points = []
    for length in p.max_lengths:
        for probe in p.probe_steps:
            if probe and length not in p.probe_lengths:
                continue
            init = ws.init(probe_steps=probe, max_length=length)
            probe_cpu = (read_json(init / INIT_FILE).get("linear_probe") or {}).get("cpu_seconds", 0.0)
            members = [ws.member(init, train, group.lr[i % len(group.lr)], group.dropout[i % len(group.dropout)],
                                 seed=i, epochs=group.epochs, checkpoints=tuple(p.checkpoints), max_length=length)
                       for i in range(group.members)]
            stages = [sorted((m / "checkpoints").iterdir()) + [m] for m in members]
            cpu = sum(_cpu_seconds(m) for m in members)
            for fraction, dirs in zip([*sorted(p.checkpoints), 1.0], zip(*stages)):
                wa = ws.merged(list(dirs)) if len(dirs) > 1 else dirs[0]
                point = {"max_length": length, "probe_steps": probe, "fraction": fraction,
                         "pair_steps": round(fraction * n_train * (group.epochs or cfg.training.epochs)),
                         "cpu_minutes": (probe_cpu + fraction * cpu) / 60, "probe_cpu_minutes": probe_cpu / 60,
                         "splits": {}}
                for split in SPLITS:
                    correct = analysis.correct(ws.pair_scores(wa, split))
                    point["splits"][split] = {
                        "WA": analysis.summarize(correct, masks[split], cfg.n_boot, cfg.seed),
                        "WA - length": analysis.compare(correct, length_correct[split], {"all": masks[split]["all"]},
                                                        cfg.n_boot, cfg.seed)["all"]}
                points.append(point)
    return {"params": {**p.__dict__, "group": group.__dict__}, "n_train": n_train, "length_baseline": baselines,
            "points": points}


def markdown(metrics: dict, kind: str) -> str:
    base = metrics["length_baseline"]
    lines = [f"\nLength baseline: ID {pct(base['test_id']['all'])}, OOD {pct(base['test_ood']['all'])}.\n",
             "| max length | LP steps | pair-steps | CPU-min | WA ID | WA OOD | OOD − length | OOD len-adv |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for pt in metrics["points"]:
        ood = pt["splits"]["test_ood"]
        lines.append(f"| {pt['max_length']} | {pt['probe_steps']} | {pt['pair_steps']} | {pt['cpu_minutes']:.1f} | "
                     f"{pct(pt['splits']['test_id']['WA']['all'])} | {pct(ood['WA']['all'])} | "
                     f"{diff_pct(ood['WA - length'])} | {pct(ood['WA'].get('length_adversarial'))} |")
    return "\n".join(lines) + "\n"


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    from warm.report.figures import plot_curves

    panels = {}
    for split in SPLITS:
        series, curves = [], {}
        for pt in metrics["points"]:
            curves.setdefault((pt["max_length"], pt["probe_steps"]), []).append(pt)
        for (length, probe), pts in curves.items():
            label = f"{length} tokens" + (f", LP {probe}" if probe else "")
            series.append({"label": label, "x": [pt["cpu_minutes"] for pt in pts],
                           "y": [100 * pt["splits"][split]["WA"]["all"]["accuracy"] for pt in pts],
                           "style": {"marker": "o"}})
        level = 100 * metrics["length_baseline"][split]["all"]["accuracy"]
        xs = [pt["cpu_minutes"] for pt in metrics["points"]]
        series.append({"label": "the longer answer wins", "x": [min(xs), max(xs)], "y": [level, level],
                       "style": {"linestyle": ":", "color": "black"}})
        panels[split] = series
    return [plot_curves(panels, "training CPU-minutes (core-minutes)", "WA pairwise accuracy (%)",
                        out_dir / "frontier.png")]
