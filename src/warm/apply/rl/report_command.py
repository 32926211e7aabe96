"""`warm rl-report`: its options (a frozen dataclass, help written once) and the command (registered lazily in
warm.cli)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import parse_named, user_errors
from warm.config import _help, batch_size_field, click_options, from_dict, max_length_field, precision_field


@dataclass(frozen=True)
class RLReportConfig:
    runs: tuple[str, ...] = field(metadata=_help("NAME=RUN_DIR of each `warm rl` run.", cli="argument"))
    out: str = field(metadata=_help("Directory for rl_report.json, rl_report.png and report.md."))
    control: str | None = field(default=None, metadata=_help(
        "Scorer spec of the control reward that rescores every run's held-out responses. Default: the control "
        "recorded during the runs."))
    max_length: int | None = max_length_field("the control")
    batch_size: int = batch_size_field(32, "Sequences per control forward pass.")
    precision: str = precision_field("Control")


@click.command("rl-report")
@click_options(RLReportConfig)
@user_errors
def rl_report_command(**options) -> None:
    """Compare `warm rl` runs given as NAME=RUN_DIR (e.g. single=runs/rl/single warm6=runs/rl/warm6): proxy and
    control reward against step, control against KL, and each run's control peak."""
    from warm.apply.rl.report import MARKDOWN_FILE, rl_report

    c = from_dict(RLReportConfig, options, "warm rl-report")
    rl_report(parse_named(c.runs, "run"), c.out, c.control, max_length=c.max_length, batch_size=c.batch_size,
              precision=c.precision)
    click.echo(f"wrote {c.out}/{MARKDOWN_FILE}")
