"""Linear mode connectivity and WA vs ENS for four diversity sources (Ramé et al. 2024, Figs. 3-5).

Each source is a pair of members (A, B) from one shared init, differing in one thing only:
  checkpoints    two checkpoints (half-way and end) of ONE member's run
  data_order     same hyperparameters, different data-order seeds
  learning_rate  different learning rates, same data order
  baklava        same hyperparameters, initialised from two checkpoints of one SFT run (`warm sft`)
The paper expects the gains of WA over Diag to grow in that order, WA(λ) ≈ ENS(λ), WA above ENS out of
distribution. Curves come from warm.evaluate.interpolation (the `warm lmc` command's code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warm.evaluate.interpolation import lmc_curves
from warm.experiments import analysis
from warm.experiments.kinds.common import diff_pct, parse_params, pct, trained_on, verdict
from warm.experiments.workspace import Workspace

SOURCES = ("checkpoints", "data_order", "learning_rate", "baklava")


@dataclass(frozen=True)
class LMCParams:
    sources: tuple[str, ...] = SOURCES
    lr: float = 4e-5  # the shared learning rate (A's, for learning_rate)
    lr_b: float = 1e-4  # B's learning rate for the learning_rate source
    dropout: float = 0.1
    lambdas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    sft_steps: tuple[int, ...] = (100, 200)  # the two SFT checkpoints the Baklava members start from
    sft_lr: float = 5e-5


def _pair(ws: Workspace, source: str, p: LMCParams) -> tuple[Path, Path]:
    init, data = ws.init(), ws.data_files()["train"]
    # One run with a half-way checkpoint is the "checkpoints" pair and, by its final weights, member A of the
    # data-order and learning-rate pairs: one training run fewer, and the three sources share their A.
    middle, a = ws.member_checkpoints(init, data, p.lr, p.dropout, seed=0, fraction=0.5)
    if source == "checkpoints":
        return middle, a
    if source == "data_order":
        return a, ws.member(init, data, p.lr, p.dropout, seed=1)
    if source == "learning_rate":
        return a, ws.member(init, data, p.lr_b, p.dropout, seed=0)
    if source == "baklava":
        init_a, init_b = ws.sft_inits(p.sft_steps[:2], lr=p.sft_lr)
        return ws.member(init_a, data, p.lr, p.dropout, seed=0), ws.member(init_b, data, p.lr, p.dropout, seed=0)
    raise ValueError(source)


def run(ws: Workspace, params: dict, kind: str) -> dict:
    p = parse_params(LMCParams, params, kind)
    unknown = set(p.sources) - set(SOURCES)
    if unknown:
        from warm.errors import WarmError

        raise WarmError(f"params of {kind}: unknown sources {sorted(unknown)} (valid: {', '.join(SOURCES)})")
    cfg, t = ws.config, ws.config.training
    results = {}
    for source in p.sources:
        a, b = _pair(ws, source, p)
        splits = {"train": ws.split(str(trained_on(b)), cfg.eval_train_pairs),  # b is a finished member dir
                  "id": ws.split("test_id"), "ood": ws.split("test_ood")}
        curves, scores = lmc_curves(str(a), str(b), splits, p.lambdas, max_length=t.max_length, precision=t.precision,
                                    n_boot=cfg.n_boot, seed=cfg.seed, progress=ws.progress, return_scores=True)
        curves["models"] = {"a": str(a), "b": str(b)}
        for split, data in splits.items():  # the length-balanced subset at every λ, from the same rewards
            masks = analysis.subset_masks(data)
            balanced = {"length_balanced": masks["length_balanced"]}
            for point in curves["splits"][split]["curves"]:
                lam_scores = scores[split][point["lambda"]]
                wa = analysis.correct((lam_scores["chosen"], lam_scores["rejected"]))
                point["length_balanced"] = {"wa": analysis.summarize(wa, balanced, cfg.n_boot, cfg.seed)["length_balanced"],
                                            "n": int(masks["length_balanced"].sum())}
            curves["splits"][split]["length_baseline"] = analysis.length_baseline(data, masks, cfg.n_boot, cfg.seed)
        results[source] = curves
    return {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.__dict__.items()}, "sources": results}


def _midpoint(curves: list[dict]) -> dict:
    return min(curves, key=lambda c: abs(c["lambda"] - 0.5))


def markdown(metrics: dict, kind: str) -> str:
    lines = ["\nAt λ = 0.5 (the weight average of the two members): accuracy, % [95% CI], and paired differences "
             "in points.\n",
             "| source | split | WA(0.5) | ENS(0.5) | Diag(0.5) | WA − Diag | WA − ENS | WA/ENS agree | r(A, B) | WA balanced |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for source, curves in metrics["sources"].items():
        for split, s in curves["splits"].items():
            mid = _midpoint(s["curves"])
            lines.append(f"| {source} | {split} | {pct(mid['wa'])} | {pct(mid['ens'])} | {100 * mid['diag']:.1f} | "
                         f"{diff_pct(mid['wa_minus_diag'])} | {diff_pct(mid['wa_minus_ens'])} | "
                         f"{100 * mid['agreement']:.1f}% | {s['reward_correlation']:.3f} | "
                         f"{pct(mid['length_balanced']['wa'])} |")
            if split != "train":
                verdicts.append(f"| {source} | {split} | WA(0.5) ≥ Diag | {diff_pct(mid['wa_minus_diag'])} | "
                                f"{verdict(mid['wa_minus_diag'], 1)} |")
                sign = 1 if split == "ood" else 0
                verdicts.append(f"| {source} | {split} | WA {'≥' if sign else '≈'} ENS | {diff_pct(mid['wa_minus_ens'])} | "
                                f"{verdict(mid['wa_minus_ens'], sign)} |")
        w = curves["weights"]
        lines.append(f"| {source} | weights | ‖A−B‖ = {w['l2_a_b']:.3f} | ‖A−mid‖ = {w['l2_a_mid']:.3f} | | | | | | |")
    lines += ["\n| source | split | paper's finding | ours [95% CI] | verdict |", "| --- | --- | --- | ---: | --- |"] + verdicts
    return "\n".join(lines) + "\n"


def plot(metrics: dict, out_dir: Path, kind: str) -> list[Path]:
    from warm.report.figures import lmc_panels, plot_curves

    panels = {}
    for source, curves in metrics["sources"].items():
        for split, series in lmc_panels(curves).items():
            panels[f"{source} · {split}"] = series
    return [plot_curves(panels, "λ (0 = A, 1 = B)", "pairwise accuracy (%)", out_dir / "lmc.png", ncols=3)]
