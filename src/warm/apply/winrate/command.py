"""`warm winrate` as a click command (registered lazily in warm.cli)."""

from __future__ import annotations

import click

from warm.cli_util import user_errors
from warm.defaults import PRECISIONS


@click.command("winrate")
@click.argument("policy_a")
@click.argument("policy_b")
@click.option("--prompts", required=True, help="Prompts file (.jsonl, .jsonl.gz, .json, .parquet, .csv) with a "
                                               "prompt (or instruction, query) column and an optional prompt_id.")
@click.option("--judge", required=True, help="Scorer spec of the judge (e.g. a control reward model): DIR, "
                                             "DIR1,DIR2, min:DIR1,DIR2, mean_minus_std=0.5:DIR1,DIR2.")
@click.option("--samples", default=1, show_default=True, type=click.IntRange(min=1),
              help="Answers per prompt and policy; the k-th answers of A and B are compared.")
@click.option("--max-new-tokens", default=256, show_default=True, type=click.IntRange(min=1),
              help="Token budget per answer.")
@click.option("--temperature", default=0.9, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Sampling temperature, the same for both policies.")
@click.option("--seed", default=0, show_default=True,
              help="Sampling seed (the same noise for A and B) and bootstrap seed.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Sequences per generate call.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Use only the first N prompts.")
@click.option("--judge-max-length", default=None, type=int,
              help="Token budget per (prompt, answer). Default: the judge's own (its input contract).")
@click.option("--judge-batch-size", default=32, show_default=True, help="Sequences per judge forward pass.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS),
              help="Judge precision: bf16 autocast where supported (auto), or fp32.")
@click.option("--n-boot", default=1000, show_default=True, help="Bootstrap resamples (over prompts) for the interval.")
@click.option("--out", default=None, help="Directory for winrate.json and the samples (a/, b/; resumable). "
                                          "Default: print the result only.")
@click.option("--force", is_flag=True, help="Regenerate the samples in --out (needed to change sampling settings).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def winrate_command(policy_a, policy_b, prompts, judge, samples, max_new_tokens, temperature, seed, batch_size, limit,
                    judge_max_length, judge_batch_size, precision, n_boot, out, force, quiet) -> None:
    """Win rate of POLICY_A against POLICY_B: both answer every prompt with the same sampling settings and seeds,
    the judge scores the answers, A wins a pair if its score is higher (ties count half); the mean over prompts
    comes with a bootstrap 95% interval. A policy is a causal-LM directory, a cached hub id, the packaged
    SmolLM2 or a `warm rl` run directory (its final/ policy)."""
    from warm.apply.winrate.run import run_winrate

    result = run_winrate(policy_a, policy_b, prompts, judge, out=out, samples=samples, max_new_tokens=max_new_tokens,
                         temperature=temperature, seed=seed, batch_size=batch_size, limit=limit,
                         judge_max_length=judge_max_length, judge_batch_size=judge_batch_size, precision=precision,
                         n_boot=n_boot, force=force, progress=not quiet)
    lo, hi = result["ci95"]
    click.echo(f"win rate of A over B: {result['win_rate']:.3f} [95% CI {lo:.3f}, {hi:.3f}] on {result['n_prompts']} "
               f"prompts ({result['wins']} wins, {result['ties']} ties, {result['losses']} losses)")
    if out:
        click.echo(f"wrote {out}/winrate.json")
