"""`warm experiment CONFIG`: run one paper-figure experiment, write metrics JSON, PNG figures and a markdown
section under runs/experiments/NAME/; `--replot` redraws figures and markdown from the JSON without training.

Kinds live in one explicit registry below (no registration by import side effects). Each kind module has
`run(workspace, params, kind) -> metrics`, `markdown(metrics, kind) -> str` and `plot(metrics, out_dir, kind)`.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import click

from warm import __version__
from warm.config import to_dict
from warm.errors import WarmError
from warm.experiments.config import ExperimentConfig, load_experiment
from warm.experiments.kinds.common import public
from warm.experiments.workspace import Workspace
from warm.fileio import read_json, write_json, write_text
from warm.rundir import timestamp

# kind name -> module under warm.experiments.kinds
KINDS = {
    "lmc_diversity": "lmc_diversity",
    "corruption": "corruption",
    "corruption_sweep": "corruption",
    "num_members": "num_members",
    "best_of_n": "best_of_n",
    "control_rm": "control_rm",
    "frontier": "frontier",
}


def kind_module(kind: str):
    if kind not in KINDS:
        raise WarmError(f"unknown experiment kind {kind!r} (valid: {', '.join(KINDS)})")
    return importlib.import_module(f"warm.experiments.kinds.{KINDS[kind]}")


def run_experiment(config_path: str | Path, *, root: str | Path = "runs/experiments", scale: float = 1.0,
                   replot: bool = False, progress: bool = True) -> dict:
    config = load_experiment(config_path, scale)
    module = kind_module(config.kind)
    out_dir = Path(root) / (config.name if scale == 1.0 else f"{config.name}-x{scale:g}")
    if replot:
        metrics = read_json(out_dir / "metrics.json")
    else:
        ws = Workspace(root, config, progress=progress)
        start = time.perf_counter()
        metrics = public(module.run(ws, config.params, config.kind))
        metrics["run"] = {"config_file": str(config_path), "config": _config_dict(config), "scale": scale,
                          "wall_seconds": time.perf_counter() - start, "warm_version": __version__,
                          "finished": timestamp()}
        write_json(out_dir / "metrics.json", metrics)
    figures = module.plot(metrics, out_dir, config.kind)
    section = _section(config, metrics, module.markdown(metrics, config.kind), figures, config_path, scale)
    write_text(out_dir / "section.md", section)
    click.echo(section)
    return metrics


def _config_dict(config: ExperimentConfig) -> dict:
    return {"name": config.name, "kind": config.kind, "data": to_dict(config.data),
            "training": to_dict(config.training), "params": config.params,
            "eval_train_pairs": config.eval_train_pairs, "n_boot": config.n_boot, "seed": config.seed}


def _section(config: ExperimentConfig, metrics: dict, body: str, figures: list[Path], path, scale: float) -> str:
    run = metrics.get("run", {})
    wall = run.get("wall_seconds")
    command = f"warm experiment {path}" + (f" --scale {scale:g}" if scale != 1.0 else "")
    head = [f"## {config.name}", "", f"Command: `{command}`" + (f" ({wall / 60:.1f} min, members cached)" if wall else ""),
            f"Data: {config.data.n_train} train pairs, {config.data.n_test} pairs per test split, "
            f"max length {config.training.max_length}, precision {config.training.precision}."]
    images = [f"![{f.stem}]({f.name})" for f in figures]
    return "\n".join(head + [""] + images + [body])
