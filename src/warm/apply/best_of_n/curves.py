"""Best-of-N curves: for every selector and N, the exact subset averages of warm.apply.best_of_n.estimator, per prompt, then
their mean over prompts with a standard error and a bootstrap interval (prompts are the unit of resampling).

Selectors are given as per-candidate scores (computed once, reused for every N); the gold reward is the
pool's. The "oracle" curve (best-of-N by gold itself) is the ceiling any selector can reach.
"""

from __future__ import annotations

import numpy as np

from warm.apply.best_of_n.estimator import (
    bon_kl,
    expected_value_at_n,
    fit_gao,
    pairwise_win_probability,
    selection_probabilities,
    win_values_vs_random,
)
from warm.apply.best_of_n.candidates import CandidatePool
from warm.errors import WarmError
from warm.metrics import bootstrap_ci, standard_error

ORACLE = "oracle (gold)"


def _summary(per_prompt: list[float], n_boot: int, seed: int) -> dict:
    values = np.asarray(per_prompt, dtype=np.float64)
    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return {"mean": float(values.mean()), "se": standard_error(values), "lo": lo, "hi": hi, "n_prompts": int(values.size)}


def bon_curves(pool: CandidatePool, selectors: dict[str, np.ndarray], ns: list[int], *, reference: str | None = None,
               n_boot: int = 1000, seed: int = 0, oracle: bool = True) -> dict:
    """{"ns", "kl", "selectors": {name: {"points": [per N], "fit"}}, "reference"}.

    Per N: `gold` (mean gold of the pick), `gain` (gold(N) - gold(1), paired per prompt), `win_vs_random`
    (P(pick's gold > a random candidate's), ties half), `proxy` (the selector's own score of its pick, in
    standard deviations of its scores over all candidates: the over-optimisation side), and `win_vs_reference`
    when a reference selector is named. Prompts with fewer than N candidates are left out of that N (each point
    records its `n_prompts`); the Gao fit uses the `fit_prompts` prompts that reach the largest N, at every N.
    """
    if pool.gold is None:
        raise WarmError(f"{pool.source}: best-of-N needs a gold reward per candidate (a 'gold' column or --gold)")
    if reference is not None and reference not in selectors:
        raise WarmError(f"reference selector {reference!r} is not one of: {', '.join(selectors)}")
    for name, scores in selectors.items():
        if np.asarray(scores).shape != (len(pool),):
            raise WarmError(f"selector {name!r}: {np.asarray(scores).shape} scores for {len(pool)} candidates")
    ns = sorted({int(n) for n in ns})
    # Prompts with fewer than N candidates drop out of that N, so each N may average a different prompt set; the
    # Gao curve is fitted on one fixed set (the prompts that reach the largest N) so its shape is not a mix of sets.
    reachable = [n for n in ns if any(g.size >= n for g in pool.groups)]
    fit_prompts = [k for k, g in enumerate(pool.groups) if reachable and g.size >= reachable[-1]]
    all_selectors = dict(selectors)
    if oracle:
        all_selectors[ORACLE] = pool.gold
    gold = pool.gold
    win_random = [win_values_vs_random(gold[g]) for g in pool.groups]
    base_gold = [float(gold[g].mean()) for g in pool.groups]
    reference_scores = None if reference is None else np.asarray(selectors[reference], dtype=np.float64)
    result = {"ns": ns, "kl": [bon_kl(n) for n in ns], "reference": reference, "n_prompts": len(pool.groups),
              "pool_sizes": {"min": int(min(g.size for g in pool.groups)), "max": int(max(g.size for g in pool.groups))},
              "fit_prompts": len(fit_prompts), "selectors": {}}
    for name, scores in all_selectors.items():
        scores = np.asarray(scores, dtype=np.float64)
        scale = float(scores.std()) or 1.0
        points, fit_gain = [], []
        for n in ns:
            keep = [k for k, g in enumerate(pool.groups) if g.size >= n]
            if not keep:
                continue
            picks = {"gold": [], "gain": [], "win_vs_random": [], "proxy": [], "win_vs_reference": []}
            for k in keep:
                g = pool.groups[k]
                probs = selection_probabilities(scores[g], n)  # one sort per (prompt, N), shared by every quantity
                at_n = float(probs @ gold[g])
                picks["gold"].append(at_n)
                picks["gain"].append(at_n - base_gold[k])
                picks["win_vs_random"].append(float(probs @ win_random[k]))
                picks["proxy"].append(float(probs @ ((scores[g] - scores[g].mean()) / scale)))
                if reference_scores is not None:
                    picks["win_vs_reference"].append(
                        pairwise_win_probability(scores[g], reference_scores[g], gold[g], n))
            gain_of = dict(zip(keep, picks["gain"]))
            fit_gain.append(float(np.mean([gain_of[k] for k in fit_prompts])))
            point = {"n": n, "kl": bon_kl(n)}
            point.update({key: _summary(v, n_boot, seed) for key, v in picks.items() if v})
            points.append(point)
        fit = fit_gao(np.array([p["kl"] for p in points]), np.array(fit_gain)) if len(points) >= 2 else None
        result["selectors"][name] = {"points": points, "fit": fit}
    return result


def point_at(curves: dict, selector: str, n: int) -> dict | None:
    return next((p for p in curves["selectors"][selector]["points"] if p["n"] == n), None)


def markdown_table(curves: dict, ns: list[int] | None = None) -> str:
    """One row per selector: mean gold at some N, win rate against random and the reference at the largest N."""
    ns = ns or [n for n in curves["ns"] if n in (1, 4, 16) or n == curves["ns"][-1]]
    top = curves["ns"][-1]
    ref = curves.get("reference")
    head = ["selector"] + [f"gold N={n}" for n in ns] + [f"win vs random N={top}"]
    head += [f"win vs {ref} N={top}"] if ref else []
    head += ["α", "β"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" + " ---: |" * (len(head) - 1)]
    for name, s in curves["selectors"].items():
        cells = [name]
        for n in ns:
            p = point_at(curves, name, n)
            cells.append(f"{p['gold']['mean']:.4f} ± {p['gold']['se']:.4f}" if p else "–")
        p = point_at(curves, name, top)
        cells.append(_pct(p.get("win_vs_random")) if p else "–")
        if ref:
            cells.append(_pct(p.get("win_vs_reference")) if p else "–")
        fit = s["fit"] or {}
        cells += [f"{fit['alpha']:.4f}" if fit else "–", f"{fit['beta']:.4f}" if fit else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(summary: dict | None) -> str:
    if not summary:
        return "–"
    return f"{100 * summary['mean']:.1f} [{100 * summary['lo']:.1f}, {100 * summary['hi']:.1f}]"


def plot_bon(curves: dict, path, title: str | None = None):
    """Gold gain vs KL and the selector's own (standardised) score vs KL, one curve per selector."""
    from warm.report.figures import plot_curves

    panels = {"gold reward gain over N=1": [], "proxy score of the pick (std units)": []}
    for name, s in curves["selectors"].items():
        style = {"linestyle": ":" if name == ORACLE else "-", "marker": "o", "markersize": 3}
        xs = [p["kl"] for p in s["points"]]
        panels["gold reward gain over N=1"].append(
            {"label": name, "x": xs, "y": [p["gain"]["mean"] for p in s["points"]],
             "lo": [p["gain"]["lo"] for p in s["points"]], "hi": [p["gain"]["hi"] for p in s["points"]], "style": style})
        if name != ORACLE:
            panels["proxy score of the pick (std units)"].append(
                {"label": name, "x": xs, "y": [p["proxy"]["mean"] for p in s["points"]], "style": style})
    if title:
        panels = {f"{title} · {k}": v for k, v in panels.items()}
    return plot_curves(panels, "KL(BoN) = log N − (N−1)/N (nats)", "", path)


def paired_gold_difference(pool: CandidatePool, scores_a: np.ndarray, scores_b: np.ndarray, n: int,
                           n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean over prompts of gold(A's BoN pick) - gold(B's), with a paired bootstrap interval over prompts."""
    from warm.metrics import paired_bootstrap_diff

    keep = [g for g in pool.groups if g.size >= n]
    a = [expected_value_at_n(np.asarray(scores_a)[g], pool.gold[g], n) for g in keep]
    b = [expected_value_at_n(np.asarray(scores_b)[g], pool.gold[g], n) for g in keep]
    return {**paired_bootstrap_diff(np.array(a), np.array(b), n_boot=n_boot, seed=seed), "n": n, "n_prompts": len(keep)}
