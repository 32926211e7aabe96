"""`warm eval` and `warm lmc`: their options (frozen dataclasses, help written once) and the commands.

Both score preference splits and share those options (`ScoringOptions`). The stage modules (warm.evaluate.runner,
warm.evaluate.interpolation) are imported when a command runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import parse_named, parse_number_list, user_errors
from warm.config import (
    _help, batch_size_field, click_options, from_dict, max_length_field, n_boot_field, precision_field, seed_field,
)


@dataclass(frozen=True, kw_only=True)
class ScoringOptions:
    """What every command that scores preference splits takes (warm eval, warm lmc)."""

    max_length: int | None = max_length_field()
    batch_size: int = batch_size_field()
    limit: int | None = field(default=None, metadata=_help("Use only the first N pairs of each split.", min=1))
    n_boot: int = n_boot_field()
    seed: int = seed_field()
    precision: str = precision_field()


@dataclass(frozen=True, kw_only=True)
class EvalConfig(ScoringOptions):
    models: tuple[str, ...] = field(default=(), metadata=_help(
        "NAME=DIR of a reward model (e.g. warm=runs/x/warm). Repeatable.", cli="multiple", flag="model"))
    ensembles: tuple[str, ...] = field(default=(), metadata=_help(
        "NAME=DIR1,DIR2,... prediction ensemble; prefix the dirs with REDUCTION: (mean, min, mean_minus_std or "
        "mean_minus_std=LAMBDA) to change the reduction. Repeatable.", cli="multiple", flag="ensemble"))
    splits: tuple[str, ...] = field(metadata=_help("NAME=FILE of a preference split. Repeatable.", cli="multiple",
                                                   flag="data"))
    out: str = field(metadata=_help("Metrics JSON to write."))


@dataclass(frozen=True, kw_only=True)
class LMCConfig(ScoringOptions):
    model_a: str = field(metadata=_help("Model A (λ = 0).", cli="argument"))
    model_b: str = field(metadata=_help("Model B (λ = 1).", cli="argument"))
    splits: tuple[str, ...] = field(metadata=_help("NAME=FILE of a preference split. Repeatable.", cli="multiple",
                                                   flag="data"))
    lambdas: str | None = field(default=None, metadata=_help(
        "Comma-separated interpolation weights in [0, 1]; 0 is A and 1 is B, both always included. "
        "Default: 0, 0.1, ..., 1."))
    out: str = field(metadata=_help("Directory for lmc.json and lmc.png."))


def scoring_kwargs(config: ScoringOptions) -> dict:
    return dict(max_length=config.max_length, batch_size=config.batch_size, limit=config.limit,
                n_boot=config.n_boot, seed=config.seed, precision=config.precision)


@click.command("eval")
@click_options(EvalConfig)
@user_errors
def eval_command(**options) -> None:
    """Pairwise accuracy of models, ensemble members and ensembles on each split, with bootstrap intervals."""
    from warm.evaluate.runner import run_eval

    config = from_dict(EvalConfig, options, "warm eval")
    run_eval(parse_named(config.models, "--model"), parse_named(config.ensembles, "--ensemble"),
             parse_named(config.splits, "--data"), config.out, **scoring_kwargs(config))


@click.command("lmc")
@click_options(LMCConfig)
@user_errors
def lmc_command(**options) -> None:
    """Accuracy along the weight interpolation (1-λ)·A + λ·B (WA), the prediction ensemble (ENS) and the chord
    between A and B (Diag): whether A and B are linearly mode connected, i.e. worth averaging."""
    from warm.evaluate.interpolation import DEFAULT_LAMBDAS, run_lmc

    config = from_dict(LMCConfig, options, "warm lmc")
    chosen = DEFAULT_LAMBDAS if config.lambdas is None else parse_number_list(
        config.lambdas, "--lambdas", float, "numbers in [0, 1]")
    run_lmc(config.model_a, config.model_b, parse_named(config.splits, "--data"), config.out, chosen,
            **scoring_kwargs(config))
    click.echo(f"wrote {config.out}/lmc.json and {config.out}/lmc.png")
