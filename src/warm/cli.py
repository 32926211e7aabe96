"""The `warm` command line: one thin function per command, each calling one stage module.

Errors meant for users (`WarmError`) print as one line, `error: ...`, and exit with status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from warm import __version__
from warm.config import InitConfig, TrainConfig, click_options, from_dict
from warm.cli_util import evaluation_options, parse_named, terminate_like_interrupt, user_errors
from warm.errors import WarmError


class LazyGroup(click.Group):
    """A click group whose listed commands are imported on first use, so `warm merge` does not pay for importing
    transformers, peft or FastAPI (the pattern from click's documentation on lazily loading subcommands)."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="warm")
def app() -> None:
    """warm: Weight Averaged Reward Models (Ramé et al., 2024, arXiv 2401.12187).

    init -> train (M members) -> merge (WARM) -> eval against members and the ensemble (ENS).
    """
    terminate_like_interrupt()


@app.command("init")
@click_options(InitConfig)
@user_errors
def init_command(**options) -> None:
    """Build the shared init: base model + ONE reward head (optionally linear-probed)."""
    from warm.train.init import build_init

    info = build_init(from_dict(InitConfig, options, "warm init"))
    click.echo(f"init written to {options['out']} (fingerprint {info['fingerprint'][:12]})")


@app.command("train")
@click_options(TrainConfig)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
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
@click.option("--lora-output", default="full", show_default=True,
              help="For LoRA members: full (an HF model: base + averaged updates) or adapter (ONE PEFT adapter of "
                   "rank M*R that concatenates the members' factors).")
@click.option("--lora-base", default=None, help="For LoRA members: the base (init) directory, if not where they record it.")
@click.option("--top-m", default=None, type=int, help="Soup: average the M members with the best accuracy on --val.")
@click.option("--greedy", is_flag=True, help="Soup: greedy soup on --val (Wortsman et al. 2022), decisions in warm_merge.json.")
@click.option("--val", default=None, help="Validation preference pairs that rank members for --top-m / --greedy.")
@click.option("--val-max-length", default=None, type=int,
              help="Token budget per (prompt, response) on --val. Default: the members' own (their input contract).")
@click.option("--val-batch-size", default=32, show_default=True, help="Sequences per forward pass on --val.")
@click.option("--emit-mergekit-yaml", default=None, help="Also write the equivalent mergekit `linear` config to this file.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def merge_command(members, out, weights, allow_mixed_init, max_shard_size, lora_output, lora_base, top_m, greedy, val,
                  val_max_length, val_batch_size, emit_mergekit_yaml, force, quiet) -> None:
    """Average the members' weights into one HF reward model (WARM), or a soup of them chosen on --val."""
    from warm.merge.merge import merge_models

    try:
        parsed = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise WarmError(f"--weights {weights!r}: expected comma-separated numbers") from None
    options = dict(force=force, allow_mixed_init=allow_mixed_init, max_shard_bytes=max_shard_size, tune_process=True,
                   lora_output=lora_output, lora_base=lora_base, progress=not quiet)
    if top_m is not None or greedy:
        from warm.merge.soups import soup_merge

        if top_m is not None and greedy:
            raise WarmError("--top-m and --greedy: choose one soup")
        if parsed is not None:
            raise WarmError("--weights: a soup (--top-m, --greedy) averages its selection uniformly")
        if val is None:
            raise WarmError(f"{'--greedy' if greedy else '--top-m'} needs --val FILE (validation pairs)")
        info = soup_merge(list(members), out, "greedy" if greedy else "top_m", val, k=top_m, max_length=val_max_length,
                          batch_size=val_batch_size, log=click.echo, **options)
    elif val is not None:
        raise WarmError("--val is used by --top-m or --greedy only")
    else:
        info = merge_models(list(members), out, weights=parsed, **options)
    click.echo(f"merged {len(info['members'])} members into {out} (weights {', '.join(f'{w:.3g}' for w in info['weights'])})")
    if emit_mergekit_yaml:
        from warm.merge.mergekit import write_mergekit_yaml

        click.echo(f"mergekit config written to {write_mergekit_yaml(emit_mergekit_yaml, info, out)}")


@app.command("eval")
@click.option("--model", "models", multiple=True, help="NAME=DIR of a reward model (e.g. warm=runs/x/warm). Repeatable.")
@click.option("--ensemble", "ensembles", multiple=True,
              help="NAME=DIR1,DIR2,... prediction ensemble; prefix the dirs with REDUCTION: (mean, min, "
                   "mean_minus_std or mean_minus_std=LAMBDA) to change the reduction. Repeatable.")
@click.option("--data", "splits", multiple=True, required=True, help="NAME=FILE of a preference split. Repeatable.")
@click.option("--out", required=True, help="Metrics JSON to write.")
@evaluation_options
@user_errors
def eval_command(models, ensembles, splits, out, max_length, batch_size, limit, n_boot, seed, precision) -> None:
    """Pairwise accuracy of models, ensemble members and ensembles on each split, with bootstrap intervals."""
    from warm.evaluate.runner import run_eval

    run_eval(parse_named(models, "--model"), parse_named(ensembles, "--ensemble"), parse_named(splits, "--data"), out,
             max_length=max_length, batch_size=batch_size, limit=limit, n_boot=n_boot, seed=seed, precision=precision)


@app.command("demo")
@click.option("--out", default="runs/demo", show_default=True, help="Run directory.")
@click.option("--fast", is_flag=True, help="A much smaller run (a minute or two) to check the set-up.")
@click.option("--force", is_flag=True, help="Start again instead of resuming the existing run.")
@user_errors
def demo_command(out, fast, force) -> None:
    """The whole pipeline on the bundled data with the packaged MiniLM: init, 4 members, merge, eval."""
    from warm.demo import run_demo

    run_demo(Path(out), fast=fast, force=force)


# Commands that live beside their stage, imported only when run or asked for help (see LazyGroup).
LAZY_COMMANDS = {
    "check": "warm.check.command:check_command",
    "lmc": "warm.evaluate.lmc_command:lmc_command",
    "rl": "warm.apply.rl.command:rl_command",
    "rl-report": "warm.apply.rl.report_command:rl_report_command",
    "bon": "warm.apply.best_of_n.command:bon_command",
    "experiment": "warm.experiments.runner:experiment_command",
    "generate": "warm.apply.sampling.command:generate_command",
    "serve": "warm.serve.command:serve_command",
    "sft": "warm.train.sft_command:sft_command",
    "winrate": "warm.apply.winrate.command:winrate_command",
}


def main() -> None:  # pragma: no cover - console entry
    app()
