"""`warm eval` from files to files: load the splits, evaluate, write metrics JSON and a markdown report."""

from __future__ import annotations

import time
from pathlib import Path

from warm import __version__
from warm.data.formats import load_preferences
from warm.errors import WarmError
from warm.evaluate.pairwise import evaluate
from warm.fileio import write_json, write_text
from warm.report.tables import eval_markdown, print_eval
from warm.score.spec import describe_spec, reduction_of
from warm.rundir import timestamp


def parse_ensembles(ensembles: dict[str, str]) -> dict[str, tuple[list[str], str, float]]:
    """NAME -> scorer spec (`[REDUCTION:]DIR1,DIR2,...`) into NAME -> (members, reduction, lambda)."""
    parsed = {}
    for name, spec in ensembles.items():
        info = describe_spec(spec)
        parsed[name] = (info["members"], *reduction_of(info))
    return parsed


def run_eval(
    models: dict[str, str],
    ensembles: dict[str, str],
    split_files: dict[str, str],
    out: str | Path,
    *,
    max_length: int | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    precision: str = "auto",
    progress: bool = True,
) -> dict:
    """Evaluate and write OUT (metrics JSON) and report.md beside it; print the table. Returns the metrics."""
    if not models and not ensembles:
        raise WarmError("nothing to evaluate: give --model NAME=DIR and/or --ensemble NAME=DIR1,DIR2")
    parsed = parse_ensembles(ensembles)
    splits = {name: load_preferences(path, limit=limit) for name, path in split_files.items()}
    start = time.perf_counter()
    metrics = evaluate(models, parsed, splits, max_length=max_length, batch_size=batch_size, n_boot=n_boot,
                       seed=seed, precision=precision, progress=progress)
    metrics["config"].update({"split_files": split_files, "limit": limit, "warm_version": __version__,
                              "wall_seconds": time.perf_counter() - start,
                              "created": timestamp()})
    out = Path(out)
    write_json(out, metrics)
    write_text(out.parent / "report.md", f"# warm eval\n\nMetrics: `{out.name}`. Pairwise accuracy with bootstrap "
               "95% intervals.\n\n" + eval_markdown(metrics) + "\n")
    print_eval(metrics)
    return metrics
