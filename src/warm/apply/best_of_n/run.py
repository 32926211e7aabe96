"""`warm bon`: score a candidate pool once per model, reduce ensembles, compute best-of-N curves, write outputs.

OUT/
  bon_config.json   the command's inputs (candidates file and hash, selectors and their members, N values),
                    written before any scoring
  scores/*.npy      each model's rewards for the pool's candidates (warm.score.cache): a re-run, or another N,
                    another subset or another selector built from the same models, scores nothing again
  bon.json          the curves (warm.apply.best_of_n.curves.bon_curves) and the run's wall time
  bon.png           gold gain and proxy score vs KL(BoN), one curve per selector
  report.md         the table of bon.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from warm.apply.best_of_n.estimator import default_ns
from warm.apply.best_of_n.curves import bon_curves, markdown_table, plot_bon
from warm.apply.best_of_n.candidates import CandidatePool, load_candidates
from warm.errors import WarmError
from warm.fileio import sha256_file, sha256_json, write_json, write_text


def score_models(pool: CandidatePool, model_dirs: list[str], cache_dir: str | Path, *, precision: str,
                 batch_size: int = 32, max_length: int | None = None, progress: bool = True,
                 weights_digest=None) -> dict[str, np.ndarray]:
    """{model dir: rewards of every candidate}, each model scored once by its own input contract (and not at all
    when cached)."""
    from warm.models.init import weights_fingerprint
    from warm.models.runtime import default_device, resolve_precision
    from warm.score.cache import cached_rewards

    precision = resolve_precision(precision, default_device())
    data_key = {"candidates": sha256_json([pool.prompts, pool.candidates])}
    digest = weights_digest or weights_fingerprint
    return {model_dir: cached_rewards(model_dir, pool.prompts, pool.candidates, cache_dir,
                                      weights_digest=digest(Path(model_dir)), data_key=data_key, precision=precision,
                                      batch_size=batch_size, max_length=max_length, progress=progress,
                                      desc=f"{Path(model_dir).name} · candidates")
            for model_dir in dict.fromkeys(model_dirs)}


def selector_scores(specs: dict[str, str], model_scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per selector name, the reward of every candidate: a model's own, or its ensemble's reduction."""
    from warm.score.reductions import reduce_scores
    from warm.score.spec import describe_spec, reduction_of

    out = {}
    for name, spec in specs.items():
        info = describe_spec(spec)
        matrix = np.stack([model_scores[_resolved(m)] for m in info["members"]])
        out[name] = matrix[0] if info["kind"] == "model" else reduce_scores(matrix, *reduction_of(info))
    return out


def _resolved(member: str) -> str:
    from warm.models.loading import resolve_model_path

    return str(resolve_model_path(member))


def _model_dirs(specs: dict[str, str]) -> list[str]:
    from warm.score.spec import describe_spec

    dirs = []
    for name, spec in specs.items():
        for member in describe_spec(spec)["members"]:
            path = _resolved(member)
            if not Path(path).is_dir():
                raise WarmError(f"selector {name!r}: {member!r} is not a model directory")
            dirs.append(path)
    return dirs


def limit_prompts(pool: CandidatePool, n_prompts: int | None) -> CandidatePool:
    """The first `n_prompts` prompts (in file order) with all their candidates."""
    if n_prompts is None or n_prompts >= len(pool.groups):
        return pool
    return pool.subset(np.concatenate(pool.groups[:n_prompts]))


def run_bon(candidates: str, selectors: dict[str, str], out: str | Path, *, ns: list[int] | None = None,
            gold: str | None = None, reference: str | None = None, max_length: int | None = None, batch_size: int = 32,
            precision: str = "auto", n_prompts: int | None = None, n_boot: int = 1000, seed: int = 0,
            progress: bool = True) -> dict:
    """The `warm bon` command's work; returns the curves written to OUT/bon.json."""
    if not selectors:
        raise WarmError("give at least one --selector NAME=SPEC")
    start = time.perf_counter()
    out = Path(out)
    pool = limit_prompts(load_candidates(candidates), n_prompts)
    model_dirs = _model_dirs(selectors)
    gold_dirs = _model_dirs({"gold": gold}) if gold else []
    if gold is None and pool.gold is None:
        raise WarmError(f"{candidates}: no 'gold' column; give a control reward model with --gold SPEC")
    max_pool = max(g.size for g in pool.groups)
    ns = sorted(set(ns)) if ns else default_ns(max_pool)
    if ns[0] < 1 or ns[-1] > max_pool:
        raise WarmError(f"--n values must be between 1 and the largest pool ({max_pool} candidates), got {ns}")
    config = {"candidates": str(candidates), "candidates_sha256": sha256_file(candidates),
              "n_prompts": len(pool.groups), "n_candidates": len(pool), "selectors": selectors,
              "gold": gold or "column 'gold'", "reference": reference, "ns": ns, "max_length": max_length,
              "precision": precision, "n_boot": n_boot, "seed": seed}
    write_json(out / "bon_config.json", config)
    scores = score_models(pool, model_dirs + gold_dirs, out / "scores", precision=precision, batch_size=batch_size,
                          max_length=max_length, progress=progress)
    if gold:
        pool = pool.with_gold(selector_scores({"gold": gold}, scores)["gold"])
    curves = bon_curves(pool, selector_scores(selectors, scores), ns, reference=reference, n_boot=n_boot, seed=seed)
    curves["config"] = config
    curves["wall_seconds"] = time.perf_counter() - start
    write_json(out / "bon.json", curves)
    plot_bon(curves, out / "bon.png")
    write_text(out / "report.md", f"# Best-of-N: {candidates}\n\n![bon](bon.png)\n\n" + markdown_table(curves))
    return curves
