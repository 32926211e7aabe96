"""`warm bon`: best-of-N selection judged by a gold reward, as a click command (registered lazily in warm.cli)."""

from __future__ import annotations

import click

from warm.cli_util import parse_named, parse_number_list, user_errors
from warm.defaults import PRECISIONS


def parse_ns(text: str | None) -> list[int] | None:
    """"1,2,4" -> [1, 2, 4]; None keeps the default (powers of two up to the pool size)."""
    return None if text is None else parse_number_list(text, "--n", int, "integers")


@click.command("bon")
@click.option("--candidates", required=True,
              help="Candidates file: rows of prompt_id, prompt, candidate and (optionally) gold. The AlpacaEval "
                   "pool and `warm generate` output are such files.")
@click.option("--selector", "selectors", multiple=True, required=True,
              help="NAME=SPEC: a reward model dir, a WARM dir, or an ensemble (DIR1,DIR2 / min:... / "
                   "mean_minus_std=0.5:...). Repeatable.")
@click.option("--n", "ns", default=None, help="Comma-separated N values. Default: 1, 2, 4, ... up to the pool size.")
@click.option("--out", required=True, help="Output directory (bon.json, bon.png, report.md, score cache).")
@click.option("--gold", default=None, help="SPEC of a control reward model that judges the picks, instead of the "
                                           "file's gold column (the paper's setting for generated candidates).")
@click.option("--reference", default=None, help="NAME of the selector that every other is compared with (win rate).")
@click.option("--prompts", "n_prompts", default=None, type=int, help="Use only the first N prompts.")
@click.option("--max-length", default=None, type=int,
              help="Token budget per (prompt, candidate). Default: each model's own (its input contract).")
@click.option("--batch-size", default=32, show_default=True, help="Sequences per forward pass.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS))
@click.option("--n-boot", default=1000, show_default=True, help="Bootstrap resamples (over prompts) for the intervals.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def bon_command(candidates, selectors, ns, out, gold, reference, n_prompts, max_length, batch_size, precision, n_boot,
                seed, quiet) -> None:
    """Best-of-N: each selector picks the top-scored of N candidates; the pick is judged by the gold reward.

    Every number is the exact average over all size-N subsets of each prompt's candidates (not one random
    draw), with standard errors and bootstrap intervals over prompts."""
    from warm.apply.best_of_n.curves import markdown_table
    from warm.apply.best_of_n.run import run_bon

    curves = run_bon(candidates, parse_named(selectors, "--selector"), out, ns=parse_ns(ns), gold=gold,
                     reference=reference, max_length=max_length, batch_size=batch_size, precision=precision,
                     n_prompts=n_prompts, n_boot=n_boot, seed=seed, progress=not quiet)
    click.echo(markdown_table(curves))
    click.echo(f"wrote {out}/bon.json, {out}/bon.png and {out}/report.md")
