"""Number of members (Ramé et al. 2024, Fig. 10 analogue): averaging the top-M members by validation accuracy.

From M_max trained members, three orders by validation accuracy (best-first, a seeded random order,
worst-first); for M = 1..M_max, the weight average (WA) and the mean-reward ensemble (ENS) of the first M, on
ID and OOD pairs. The paper's expectation: accuracy improves with M, best-first above random above worst-first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warm.experiments import analysis
from warm.experiments.kinds.common import MemberGroup, diff_pct, parse_params, pct, train_group, verdict
from warm.experiments.workspace import Workspace

ORDERS = ("best-first", "random", "worst-first")


@dataclass(frozen=True)
class NumMembersParams:
    group: dict = field(default_factory=lambda: {"members": 6})
    order_seed: int = 0


def _orders(val_acc: dict[str, float], seed: int) -> dict[str, list[str]]:
    best = sorted(val_acc, key=lambda n: (-val_acc[n], n))
    shuffled = [best[i] for i in np.random.default_rng(seed).permutation(len(best))]
    return {"best-first": best, "random": shuffled, "worst-first": best[::-1]}


def run(ws: Workspace, params: dict, kind: str) -> dict:
    p = parse_params(NumMembersParams, params, kind)
    group = parse_params(MemberGroup, p.group, f"{kind}.group")
    members = train_group(ws, group)
    names = {f"m{i:02d}": m for i, m in enumerate(members)}
    cfg = ws.config
    val_acc = {n: float(analysis.correct(ws.pair_scores(m, "val")).mean()) for n, m in names.items()}
    orders = _orders(val_acc, p.order_seed)
    curves: dict = {}
    for split in ("test_id", "test_ood"):
        data = ws.split(split)
        masks = analysis.subset_masks(data)
        member_scores = {n: ws.pair_scores(m, split) for n, m in names.items()}
        curves[split] = {"length_baseline": analysis.length_baseline(data, masks, cfg.n_boot, cfg.seed), "orders": {}}
        for order, ranked in orders.items():
            rows = []
            for m_count in range(1, len(ranked) + 1):
                chosen = ranked[:m_count]
                wa_dir = names[chosen[0]] if m_count == 1 else ws.merged([names[n] for n in sorted(chosen)])
                wa = analysis.correct(ws.pair_scores(wa_dir, split))
                ens = analysis.correct(analysis.ensemble([member_scores[n] for n in chosen]))
                rows.append({"M": m_count, "members": chosen,
                             "WA": analysis.summarize(wa, masks, cfg.n_boot, cfg.seed),
                             "ENS": analysis.summarize(ens, masks, cfg.n_boot, cfg.seed),
                             "WA - ENS": analysis.compare(wa, ens, masks, cfg.n_boot, cfg.seed),
                             "_wa": wa})
            first = rows[0]["_wa"]
            for row in rows:
                row["WA(M) - WA(1)"] = analysis.compare(row["_wa"], first, {"all": masks["all"]}, cfg.n_boot, cfg.seed)["all"]
            curves[split]["orders"][order] = rows
    return {"params": {"group": group.__dict__, "order_seed": p.order_seed}, "val_accuracy": val_acc,
            "orders": orders, "members": {n: str(m) for n, m in names.items()}, "splits": curves}


def markdown(metrics: dict, kind: str) -> str:
    lines = ["\nValidation accuracy of the members: " +
             ", ".join(f"{n} {100 * a:.1f}%" for n, a in sorted(metrics["val_accuracy"].items())) + ".\n"]
    for split, s in metrics["splits"].items():
        lines.append(f"\n#### {split} (length baseline {pct(s['length_baseline']['all'])})\n")
        lines.append("| M | " + " | ".join(f"WA {o}" for o in ORDERS) + " | " + " | ".join(f"ENS {o}" for o in ORDERS) + " |")
        lines.append("| ---: |" + " ---: |" * (2 * len(ORDERS)))
        for i in range(len(s["orders"][ORDERS[0]])):
            cells = [pct(s["orders"][o][i]["WA"]["all"]) for o in ORDERS] + [pct(s["orders"][o][i]["ENS"]["all"]) for o in ORDERS]
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        best = s["orders"]["best-first"]
        last = best[-1]["WA(M) - WA(1)"]
        lines.append(f"\nBest-first, WA(M={len(best)}) − WA(1): {diff_pct(last)} → {verdict(last, 1)} "
                     "(paper: accuracy improves with M).")
        full = best[-1]
        lines.append(f"WA(M={len(best)}) − ENS(M={len(best)}): {diff_pct(full['WA - ENS']['all'])}; on the "
                     f"length-adversarial pairs WA {pct(full['WA'].get('length_adversarial'))}, ENS "
                     f"{pct(full['ENS'].get('length_adversarial'))}; length-balanced WA "
                     f"{pct(full['WA'].get('length_balanced'))}, ENS {pct(full['ENS'].get('length_balanced'))}.")
    return "\n".join(lines) + "\n"


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    from warm.report.figures import plot_curves

    panels = {}
    for split, s in metrics["splits"].items():
        series = []
        for order in ORDERS:
            rows = s["orders"][order]
            for scorer, style in (("WA", {"linestyle": "-", "marker": "o"}), ("ENS", {"linestyle": "--", "marker": "x"})):
                acc = [r[scorer]["all"] for r in rows]
                series.append({"label": f"{scorer} {order}", "x": [r["M"] for r in rows],
                               "y": [100 * a["accuracy"] for a in acc], "style": style})
        panels[split] = series
    return [plot_curves(panels, "number of members M", "pairwise accuracy (%)", out_dir / "num_members.png")]
