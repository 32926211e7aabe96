"""`warm winrate`: its options (a frozen dataclass, help written once) and the command (registered lazily in
warm.cli)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.apply.sampling.command import PROMPTS_HELP
from warm.cli_util import user_errors
from warm.config import (
    _help, batch_size_field, click_options, force_field, from_dict, max_length_field, n_boot_field, precision_field,
    quiet_field,
)


@dataclass(frozen=True)
class WinrateConfig:
    policy_a: str = field(metadata=_help("Policy A.", cli="argument"))
    policy_b: str = field(metadata=_help("Policy B.", cli="argument"))
    prompts: str = field(metadata=_help(PROMPTS_HELP))
    judge: str = field(metadata=_help(
        "Scorer spec of the judge (e.g. a control reward model): DIR, DIR1,DIR2, min:DIR1,DIR2, "
        "mean_minus_std=0.5:DIR1,DIR2."))
    samples: int = field(default=1, metadata=_help(
        "Answers per prompt and policy; the k-th answers of A and B are compared.", min=1))
    max_new_tokens: int = field(default=256, metadata=_help("Token budget per answer.", min=1))
    temperature: float = field(default=0.9, metadata=_help("Sampling temperature, the same for both policies.",
                                                           min=0, min_open=True))
    seed: int = field(default=0, metadata=_help("Sampling seed (the same noise for A and B) and bootstrap seed."))
    batch_size: int = field(default=8, metadata=_help("Sequences per generate call.", min=1))
    limit: int | None = field(default=None, metadata=_help("Use only the first N prompts.", min=1))
    judge_max_length: int | None = max_length_field("the judge")
    judge_batch_size: int = batch_size_field(32, "Sequences per judge forward pass.")
    precision: str = precision_field("Judge")
    n_boot: int = n_boot_field("prompts")
    out: str | None = field(default=None, metadata=_help(
        "Directory for winrate.json and the samples (a/, b/; resumable). Default: print the result only."))
    force: bool = force_field("Regenerate the samples in --out (needed to change sampling settings).")
    quiet: bool = quiet_field()


@click.command("winrate")
@click_options(WinrateConfig)
@user_errors
def winrate_command(**options) -> None:
    """Win rate of POLICY_A against POLICY_B: both answer every prompt with the same sampling settings and seeds,
    the judge scores the answers, A wins a pair if its score is higher (ties count half); the mean over prompts
    comes with a bootstrap 95% interval. A policy is a causal-LM directory, a cached hub id, the packaged
    SmolLM2 or a `warm rl` run directory (its final/ policy)."""
    from warm.apply.winrate.run import run_winrate

    c = from_dict(WinrateConfig, options, "warm winrate")
    result = run_winrate(c.policy_a, c.policy_b, c.prompts, c.judge, out=c.out, samples=c.samples,
                         max_new_tokens=c.max_new_tokens, temperature=c.temperature, seed=c.seed,
                         batch_size=c.batch_size, limit=c.limit, judge_max_length=c.judge_max_length,
                         judge_batch_size=c.judge_batch_size, precision=c.precision, n_boot=c.n_boot, force=c.force,
                         progress=not c.quiet)
    lo, hi = result["ci95"]
    click.echo(f"win rate of A over B: {result['win_rate']:.3f} [95% CI {lo:.3f}, {hi:.3f}] on {result['n_prompts']} "
               f"prompts ({result['wins']} wins, {result['ties']} ties, {result['losses']} losses)")
    if c.out:
        click.echo(f"wrote {c.out}/winrate.json")
