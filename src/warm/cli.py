"""The `warm` command line: one thin function per command, each calling one stage module.

Errors meant for users (`WarmError`) print as one line, `error: ...`, and exit with status 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from warm import __version__
from warm.config import InitConfig, TrainConfig, click_options, from_dict
from warm.errors import WarmError
from warm.models.precision import PRECISIONS


def _user_errors(func):
    """Turn WarmError into a one-line message and exit status 2 (no stack trace)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except WarmError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _named(values: tuple[str, ...], what: str) -> dict[str, str]:
    """Parse repeated NAME=VALUE options, keeping order; duplicate names are an error."""
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise WarmError(f"{what} {item!r}: expected NAME=VALUE")
        if name in parsed:
            raise WarmError(f"{what}: the name {name!r} is given twice")
        parsed[name] = value
    return parsed


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="warm")
def app() -> None:
    """warm: Weight Averaged Reward Models (Ramé et al., 2024, arXiv 2401.12187).

    init -> train (M members) -> merge (WARM) -> eval against members and the ensemble (ENS).
    """


@app.command("init")
@click_options(InitConfig)
@_user_errors
def init_command(**options) -> None:
    """Build the shared init: base model + ONE reward head (optionally linear-probed)."""
    from warm.models.init import build_init

    info = build_init(from_dict(InitConfig, options, "warm init"))
    click.echo(f"init written to {options['out']} (fingerprint {info['fingerprint'][:12]})")


@app.command("train")
@click_options(TrainConfig)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def train_command(quiet: bool, **options) -> None:
    """Fine-tune M reward members from the shared init(s) with diverse lr, dropout and data order."""
    from warm.train.launcher import run_training

    metrics = run_training(from_dict(TrainConfig, options, "warm train"), progress=not quiet)
    for name, member in metrics["members"].items():
        click.echo(f"{name}: loss {member['train_loss']:.4f}, {member['pairs_per_second']:.1f} pairs/s")


@app.command("merge")
@click.argument("members", nargs=-1, required=True)
@click.option("--out", required=True, help="Directory for the merged (WARM) model.")
@click.option("--weights", default=None, help="Comma-separated weights, one per member (normalised). Default: uniform.")
@click.option("--allow-mixed-init", is_flag=True, help="Merge members whose init fingerprints differ (with a warning).")
@click.option("--max-shard-size", default=None, type=int, help="Split the output into safetensors shards of at most this many bytes.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@_user_errors
def merge_command(members, out, weights, allow_mixed_init, max_shard_size, force) -> None:
    """Average the members' weights into one HF reward model (WARM)."""
    from warm.merge.merge import merge_models

    try:
        parsed = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise WarmError(f"--weights {weights!r}: expected comma-separated numbers") from None
    info = merge_models(list(members), out, weights=parsed, force=force, allow_mixed_init=allow_mixed_init,
                        max_shard_bytes=max_shard_size)
    click.echo(f"merged {len(info['members'])} members into {out} (weights {', '.join(f'{w:.3g}' for w in info['weights'])})")


@app.command("eval")
@click.option("--model", "models", multiple=True, help="NAME=DIR of a reward model (e.g. warm=runs/x/warm). Repeatable.")
@click.option("--ensemble", "ensembles", multiple=True,
              help="NAME=DIR1,DIR2,... prediction ensemble; prefix the dirs with REDUCTION: (mean, min, "
                   "mean_minus_std or mean_minus_std=LAMBDA) to change the reduction. Repeatable.")
@click.option("--data", "splits", multiple=True, required=True, help="NAME=FILE of a preference split. Repeatable.")
@click.option("--out", required=True, help="Metrics JSON to write.")
@click.option("--max-length", default=160, show_default=True, help="Token budget per (prompt, response).")
@click.option("--batch-size", default=32, show_default=True, help="Sequences per forward pass.")
@click.option("--limit", default=None, type=int, help="Use only the first N pairs of each split.")
@click.option("--n-boot", default=1000, show_default=True, help="Bootstrap resamples for the 95% intervals.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS),
              help="Scoring precision: bf16 autocast where supported (auto), or fp32.")
@_user_errors
def eval_command(models, ensembles, splits, out, max_length, batch_size, limit, n_boot, seed, precision) -> None:
    """Pairwise accuracy of models, ensemble members and ensembles on each split, with bootstrap intervals."""
    from warm.evaluate.runner import run_eval

    run_eval(_named(models, "--model"), _named(ensembles, "--ensemble"), _named(splits, "--data"), out,
             max_length=max_length, batch_size=batch_size, limit=limit, n_boot=n_boot, seed=seed, precision=precision)


@app.command("demo")
@click.option("--out", default="runs/demo", show_default=True, help="Run directory.")
@click.option("--fast", is_flag=True, help="A much smaller run (a minute or two) to check the set-up.")
@click.option("--force", is_flag=True, help="Start again instead of resuming the existing run.")
@_user_errors
def demo_command(out, fast, force) -> None:
    """The whole pipeline on the bundled data with the packaged MiniLM: init, 4 members, merge, eval."""
    from warm.demo import run_demo

    run_demo(Path(out), fast=fast, force=force)


def main() -> None:  # pragma: no cover - console entry
    app()
