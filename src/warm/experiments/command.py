"""`warm experiment CONFIG`: its options (a frozen dataclass, help written once) and the command; the runner
(warm.experiments.runner) is imported when it runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import user_errors
from warm.config import _help, click_options, from_dict, quiet_field


@dataclass(frozen=True)
class ExperimentCommandConfig:
    config: str = field(metadata=_help("An experiment config (experiments/*.yaml).", cli="argument"))
    root: str = field(default="runs/experiments", metadata=_help(
        "Workspace: data, members and scores are cached here."))
    scale: float = field(default=1.0, metadata=_help("Multiply pair counts (e.g. 4 on a GPU)."))
    replot: bool = field(default=False, metadata=_help(
        "Redraw figures and markdown from the existing metrics.json only."))
    quiet: bool = quiet_field()


@click.command("experiment")
@click_options(ExperimentCommandConfig)
@user_errors
def experiment_command(**options) -> None:
    """Run one experiment config (experiments/*.yaml); members and scores are cached and reused."""
    from warm.experiments.runner import run_experiment

    c = from_dict(ExperimentCommandConfig, options, "warm experiment")
    run_experiment(c.config, root=c.root, scale=c.scale, replot=c.replot, progress=not c.quiet)
