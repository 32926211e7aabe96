"""`warm init` and `warm train`: options from `InitConfig` and `TrainConfig` (warm.config), the work in
warm.train.init and warm.train.launcher, imported when a command runs."""

from __future__ import annotations

import click

from warm.cli_util import user_errors
from warm.config import InitConfig, TrainConfig, click_options, from_dict


@click.command("init")
@click_options(InitConfig)
@user_errors
def init_command(**options) -> None:
    """Build the shared init: base model + ONE reward head (optionally linear-probed)."""
    from warm.train.init import build_init

    info = build_init(from_dict(InitConfig, options, "warm init"))
    click.echo(f"init written to {options['out']} (fingerprint {info['fingerprint'][:12]})")


@click.command("train")
@click_options(TrainConfig)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def train_command(quiet: bool, **options) -> None:
    """Fine-tune M reward members from the shared init(s) with diverse lr, dropout and data order."""
    from warm.train.launcher import run_training

    metrics = run_training(from_dict(TrainConfig, options, "warm train"), progress=not quiet)
    for name, member in metrics["members"].items():
        click.echo(f"{name}: loss {member['train_loss']:.4f}, {member['pairs_per_second']:.1f} pairs/s")
