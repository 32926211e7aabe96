"""`warm bon`: best-of-N selection judged by a gold reward: its options (a frozen dataclass, help written once) and
the command (registered lazily in warm.cli)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import parse_named, parse_number_list, user_errors
from warm.config import (
    _help, batch_size_field, click_options, from_dict, max_length_field, n_boot_field, precision_field, quiet_field,
    seed_field,
)


@dataclass(frozen=True)
class BonConfig:
    candidates: str = field(metadata=_help(
        "Candidates file: rows of prompt_id, prompt, candidate and (optionally) gold. The AlpacaEval pool and "
        "`warm generate` output are such files."))
    selectors: tuple[str, ...] = field(metadata=_help(
        "NAME=SPEC: a reward model dir, a WARM dir, or an ensemble (DIR1,DIR2 / min:... / mean_minus_std=0.5:...). "
        "Repeatable.", cli="multiple", flag="selector"))
    out: str = field(metadata=_help("Output directory (bon.json, bon.png, report.md, score cache)."))
    ns: str | None = field(default=None, metadata=_help(
        "Comma-separated N values. Default: 1, 2, 4, ... up to the pool size.", flag="n"))
    gold: str | None = field(default=None, metadata=_help(
        "SPEC of a control reward model that judges the picks, instead of the file's gold column (the paper's "
        "setting for generated candidates)."))
    reference: str | None = field(default=None, metadata=_help(
        "NAME of the selector that every other is compared with (win rate)."))
    n_prompts: int | None = field(default=None, metadata=_help("Use only the first N prompts.", flag="prompts",
                                                                min=1))
    max_length: int | None = max_length_field()
    batch_size: int = batch_size_field()
    precision: str = precision_field()
    n_boot: int = n_boot_field("prompts")
    seed: int = seed_field()
    quiet: bool = quiet_field()


def parse_ns(text: str | None) -> list[int] | None:
    """"1,2,4" -> [1, 2, 4]; None keeps the default (powers of two up to the pool size)."""
    return None if text is None else parse_number_list(text, "--n", int, "integers")


@click.command("bon")
@click_options(BonConfig)
@user_errors
def bon_command(**options) -> None:
    """Best-of-N: each selector picks the top-scored of N candidates; the pick is judged by the gold reward.

    Every number is the exact average over all size-N subsets of each prompt's candidates (not one random
    draw), with standard errors and bootstrap intervals over prompts."""
    from warm.apply.best_of_n.curves import markdown_table
    from warm.apply.best_of_n.run import run_bon

    c = from_dict(BonConfig, options, "warm bon")
    curves = run_bon(c.candidates, parse_named(c.selectors, "--selector"), c.out, ns=parse_ns(c.ns), gold=c.gold,
                     reference=c.reference, max_length=c.max_length, batch_size=c.batch_size, precision=c.precision,
                     n_prompts=c.n_prompts, n_boot=c.n_boot, seed=c.seed, progress=not c.quiet)
    click.echo(markdown_table(curves))
    click.echo(f"wrote {c.out}/bon.json, {c.out}/bon.png and {c.out}/report.md")
