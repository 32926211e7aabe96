"""`warm sft`: options from `SFTConfig` (warm.train.sft_config), the work in warm.train.sft.run_sft, imported when
the command runs."""

from __future__ import annotations

import click

from warm.cli_util import user_errors
from warm.config import click_options, from_dict
from warm.train.sft_config import SFTConfig


@click.command("sft")
@click_options(SFTConfig)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def sft_command(quiet: bool, **options) -> None:
    """Continue training a backbone with its own LM objective (masked LM for encoders, causal LM for decoders),
    saving checkpoints at chosen steps: `warm init --model OUT/step-000100` starts a reward model from one, and
    several inits from one run give the Baklava variant."""
    from warm.train.sft import run_sft

    config = from_dict(SFTConfig, options, "warm sft")
    result = run_sft(config, progress=not quiet)
    if result["status"] == "complete":
        click.echo(f"all {len(result['checkpoints'])} checkpoints already in {config.out}; nothing to do "
                   "(--force retrains)")
        return
    losses = ", ".join(f"step {c['step']} loss {c['loss']:.3f}" for c in result["checkpoints"])
    click.echo(f"{result['objective']} on {result['data']['n_sequences']} sequences: {losses}; "
               f"{result['sequences_per_second']:.1f} sequences/s, {result['tokens_per_second']:.0f} tokens/s "
               f"({result['precision']}); checkpoints in {config.out}")
