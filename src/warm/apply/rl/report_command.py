"""`warm rl-report` as a click command (registered lazily in warm.cli)."""

from __future__ import annotations

import click

from warm.cli_util import parse_named, user_errors
from warm.defaults import PRECISIONS


@click.command("rl-report")
@click.argument("runs", nargs=-1, required=True)
@click.option("--control", default=None, help="Scorer spec of the control reward that rescores every run's held-out "
                                              "responses. Default: the control recorded during the runs.")
@click.option("--out", required=True, help="Directory for rl_report.json, rl_report.png and report.md.")
@click.option("--max-length", default=None, type=int,
              help="Control's token budget per (prompt, response). Default: its own (its input contract).")
@click.option("--batch-size", default=32, show_default=True, help="Sequences per control forward pass.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS),
              help="Control precision: bf16 autocast where supported (auto), or fp32.")
@user_errors
def rl_report_command(runs, control, out, max_length, batch_size, precision) -> None:
    """Compare `warm rl` runs given as NAME=RUN_DIR (e.g. single=runs/rl/single warm6=runs/rl/warm6): proxy and
    control reward against step, control against KL, and each run's control peak."""
    from warm.apply.rl.report import MARKDOWN_FILE, rl_report

    rl_report(parse_named(runs, "run"), out, control, max_length=max_length, batch_size=batch_size, precision=precision)
    click.echo(f"wrote {out}/{MARKDOWN_FILE}")
