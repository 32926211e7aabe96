"""`warm check MODEL_DIR`: does every tool that loads this model compute the reward warm computes?"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import user_errors
from warm.config import _help, click_options, from_dict


@dataclass(frozen=True)
class CheckConfig:
    model_dir: str = field(metadata=_help("The reward model directory to check.", cli="argument"))
    data: str | None = field(default=None, metadata=_help(
        "Preference pairs to sample (text prompt/chosen/rejected). Default: the bundled out-of-distribution demo "
        "split."))
    limit: int = field(default=20, metadata=_help("Pairs to score (both responses of each).", min=1))
    policy: str | None = field(default=None, metadata=_help(
        "The RL policy whose chat template renders OpenRLHF's queries (a model directory, or "
        "packaged:smollm2-135m-instruct). Default: the reward model's own tokenizer stands in for it."))
    only: tuple[str, ...] = field(default=(), metadata=_help(
        "Check only this path (repeatable); default: all.", cli="multiple", flag="path"))
    tolerance: float = field(default=1e-4, metadata=_help(
        "Largest absolute reward difference (fp32) a compatible path may show."))
    out: str | None = field(default=None, metadata=_help("Also write the report as JSON here."))


@click.command("check")
@click_options(CheckConfig)
@user_errors
def check_command(**options) -> None:
    """Score a sample of pairs through every consumer of a reward model (warm's TRL reward function, the model
    card's transformers snippet, pipeline, TRL's reward-model path, a RewardBench-style run, warm serve called as
    OpenRLHF calls it) and compare each with warm's own reward. Exits 1 when a path declared compatible disagrees
    by more than --tolerance; paths whose package is missing are reported as skipped."""
    from warm.check.run import markdown, ok, run_check
    from warm.fileio import write_json

    c = from_dict(CheckConfig, options, "warm check")
    report = run_check(c.model_dir, data=c.data, limit=c.limit, policy=c.policy, tolerance=c.tolerance, only=c.only,
                       log=lambda message: click.echo(message, err=True))
    contract = report["contract"]
    click.echo(f"{report['model']}: {report['n_pairs']} pairs from {report['sample']}; contract: "
               f"{contract['rendering']} ({contract['template']} template), add_special_tokens="
               f"{contract['add_special_tokens']}, max length {contract['max_length']} "
               f"({report['n_cut']} of {2 * report['n_pairs']} inputs cut)")
    click.echo(markdown(report))
    if c.out:
        write_json(c.out, report)
    if not ok(report):
        failed = [e["path"] for e in report["paths"] if e["status"] == "FAILED"]
        click.echo(f"error: {', '.join(failed)} declared compatible but disagree(s) with warm's reward", err=True)
        raise SystemExit(1)
