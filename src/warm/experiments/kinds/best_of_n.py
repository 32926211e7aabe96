"""Best-of-N on real judged candidates (Ramé et al. 2024, Figs. 6-7 and 15-17 analogue).

For every held-out instruction of the pool, the candidates are the outputs of the generators (both tiers, or
one); the gold reward is the pool's GPT-4-turbo judgement. Selectors: every member, WARM of the first M members,
ENS of the first M with each reduction, and "the longest answer" (the judge's length bias as a baseline), for
clean and for corrupted training labels. Members are those of the reward-model experiments (same recipe, so
the workspace reuses them). The paper's expectations: WARM's picks have a higher gold reward than ENS's and
every member's, more so with corrupted labels, and WARM beats random selection (92.5% at N = 1000, M = 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warm.apply.best_of_n.estimator import default_ns
from warm.apply.best_of_n.curves import (
    ORACLE,
    bon_curves,
    markdown_table,
    paired_gold_difference,
    plot_bon,
)
from warm.apply.best_of_n.run import limit_prompts
from warm.apply.best_of_n.candidates import CandidatePool, candidate_pool_from_rows
from warm.data.alpacaeval import generator_tiers, read_pool, split_instructions
from warm.experiments.kinds.common import (
    MemberGroup,
    best_by_validation,
    parse_params,
    train_group,
    verdict,
)
from warm.experiments.workspace import Workspace
from warm.score.reductions import DEFAULT_LAM, reduce_scores

LONGEST = "longest answer"


@dataclass(frozen=True)
class BoNParams:
    group: dict = field(default_factory=lambda: {"members": 6})
    fractions: tuple[float, ...] = (0.0, 0.25)  # label corruption of the members' training pairs
    corrupt_seed: int = 0
    warm_sizes: tuple[int, ...] = (2, 4, 6)
    ens_sizes: tuple[int, ...] = (2, 6)
    reductions: tuple[str, ...] = ("mean", "min", "mean_minus_std")
    tier: str = "all"  # which generators' outputs are candidates: all, train or ood
    n_prompts: int | None = None  # None: every held-out instruction
    reference: str = "best member"  # the member with the best validation accuracy


def heldout_pool(ws: Workspace, tier: str, n_prompts: int | None) -> CandidatePool:
    """Candidates of the instructions the workspace holds out from training (the test splits' instructions)."""
    d = ws.config.data
    rows = read_pool(d.source)
    _, _, heldout = split_instructions(rows, d.seed, d.heldout_fraction, d.val_fraction)
    tiers = generator_tiers(rows)
    keep = set(heldout)
    chosen = [r for r in sorted(rows, key=lambda r: (r["instruction_id"], r["generator"]))
              if r["instruction_id"] in keep and (tier == "all" or tiers[r["generator"]] == tier)]
    return limit_prompts(candidate_pool_from_rows(chosen, source=f"{d.source} (held-out, {tier})"), n_prompts)


def _one_level(ws: Workspace, p: BoNParams, group: MemberGroup, pool: CandidatePool, fraction: float) -> dict:
    from warm.apply.best_of_n.run import score_models

    members = train_group(ws, group, corrupt=fraction, corrupt_seed=p.corrupt_seed)
    names = {f"m{i:02d}": m for i, m in enumerate(members)}
    val_acc, best = best_by_validation(ws, names)
    warm_dirs = {f"WARM M={k}": ws.merged(members[:k]) for k in p.warm_sizes if 2 <= k <= len(members)}
    t = ws.config.training
    dirs = [str(m) for m in members] + [str(d) for d in warm_dirs.values()]
    scores = score_models(pool, dirs, ws.root / "scores", precision=t.precision,
                          progress=ws.progress, weights_digest=lambda path: ws.digest("weights", path))
    selectors = {name: scores[str(m)] for name, m in names.items()}
    selectors.update({name: scores[str(d)] for name, d in warm_dirs.items()})
    for k in p.ens_sizes:
        matrix = np.stack([scores[str(m)] for m in members[:k]])
        for reduction in p.reductions:
            selectors[f"ENS M={k} {reduction}"] = reduce_scores(matrix, reduction, DEFAULT_LAM)
    selectors[LONGEST] = np.array([len(c) for c in pool.candidates], dtype=np.float64)
    selectors[p.reference] = selectors[best]
    cfg = ws.config
    ns = default_ns(max(g.size for g in pool.groups))
    curves = bon_curves(pool, selectors, ns, reference=p.reference, n_boot=cfg.n_boot, seed=cfg.seed)
    comparisons = []  # WARM against ENS (mean) of the same members and against the best member, paired by prompt
    for k in p.warm_sizes:
        if f"WARM M={k}" not in selectors:
            continue
        others = [o for o in (f"ENS M={k} mean", p.reference, LONGEST) if o in selectors]
        for other in others:
            for n in (4, 16, ns[-1]):
                if n <= ns[-1]:
                    comparisons.append({"a": f"WARM M={k}", "b": other, **paired_gold_difference(
                        pool, selectors[f"WARM M={k}"], selectors[other], n, cfg.n_boot, cfg.seed)})
    return {"fraction": fraction, "members": {n: str(m) for n, m in names.items()}, "val_accuracy": val_acc,
            "best_member": best, "warm": {k: str(v) for k, v in warm_dirs.items()}, "curves": curves,
            "comparisons": comparisons}


def run(ws: Workspace, params: dict, kind: str) -> dict:
    p = parse_params(BoNParams, params, kind)
    group = parse_params(MemberGroup, p.group, f"{kind}.group")
    if p.tier not in ("all", "train", "ood"):
        from warm.errors import WarmError

        raise WarmError(f"params of {kind}: tier must be all, train or ood, not {p.tier!r}")
    pool = heldout_pool(ws, p.tier, p.n_prompts)
    levels = [_one_level(ws, p, group, pool, f) for f in p.fractions]
    return {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.__dict__.items()},
            "pool": {"prompts": len(pool.groups), "candidates": len(pool), "tier": p.tier,
                     "mean_gold": float(pool.gold.mean())},
            "levels": levels}


def markdown(metrics: dict, kind: str) -> str:
    pool = metrics["pool"]
    lines = [(f"\nPool: {pool['prompts']} held-out instructions, {pool['candidates']} candidates ({pool['tier']} "
             f"generators), mean gold {pool['mean_gold']:.4f}. Gold = the judge's probability that the answer "
             "beats its reference answer; every value is the exact mean over all size-N subsets, ± its standard "
             "error over prompts; win rates are % [95% bootstrap CI over prompts].\n")]
    for level in metrics["levels"]:
        c = level["curves"]
        lines.append(f"\n### {100 * level['fraction']:.0f}% corrupted training labels "
                     f"(best member by validation accuracy: {level['best_member']})\n")
        lines.append(markdown_table(c))
        lines.append("\nPaired differences in the gold of the pick (WARM − other), mean over prompts [95% CI]; "
                     "the paper expects WARM above ENS and above the best member:\n")
        lines.append("| comparison | N | Δ gold [95% CI] | verdict |\n| --- | ---: | ---: | --- |")
        for comp in level["comparisons"]:
            lines.append(f"| {comp['a']} − {comp['b']} | {comp['n']} | {comp['diff']:+.4f} "
                         f"[{comp['lo']:+.4f}, {comp['hi']:+.4f}] | {verdict(comp, 1)} |")
    return "\n".join(lines) + "\n"


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    paths = []
    for level in metrics["levels"]:
        c = level["curves"]
        keep = {n: s for n, s in c["selectors"].items()
                if n.startswith(("WARM", "ENS M=2 mean", "ENS M=6 mean")) or n in (ORACLE, LONGEST, c["reference"])}
        view = {**c, "selectors": keep}
        paths.append(plot_bon(view, out_dir / f"bon_{100 * level['fraction']:.0f}pct.png",
                              title=f"{100 * level['fraction']:.0f}% corrupted"))
    return paths
