"""`warm merge`: its options (one frozen dataclass, help written once) and the command that runs the merge or soup.

Only click and the config machinery are imported here, so `warm merge --help` costs nothing; the merge itself needs
no transformers, and imports torch and safetensors when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import user_errors
from warm.config import _help, batch_size_field, click_options, force_field, from_dict, quiet_field
from warm.errors import WarmError


@dataclass(frozen=True)
class MergeConfig:
    members: tuple[str, ...] = field(metadata=_help("Member directories to average.", cli="argument"))
    out: str = field(metadata=_help("Directory for the merged (WARM) model."))
    weights: str | None = field(default=None, metadata=_help(
        "Comma-separated weights, one per member (normalised). Default: uniform."))
    allow_mixed_init: bool = field(default=False, metadata=_help(
        "Merge members whose init fingerprints differ (with a warning)."))
    max_shard_size: int | None = field(default=None, metadata=_help(
        "Split the output into safetensors shards of at most this many bytes."))
    lora_output: str = field(default="full", metadata=_help(
        "For LoRA members: full (an HF model: base + averaged updates) or adapter (ONE PEFT adapter of rank M*R that "
        "concatenates the members' factors).", choices=("full", "adapter")))
    lora_base: str | None = field(default=None, metadata=_help(
        "For LoRA members: the base (init) directory, if not where they record it."))
    top_m: int | None = field(default=None, metadata=_help(
        "Soup: average the M members with the best accuracy on --val."))
    greedy: bool = field(default=False, metadata=_help(
        "Soup: greedy soup on --val (Wortsman et al. 2022), decisions in warm_merge.json."))
    val: str | None = field(default=None, metadata=_help(
        "Validation preference pairs that rank members for --top-m / --greedy."))
    val_max_length: int | None = field(default=None, metadata=_help(
        "Token budget per (prompt, response) on --val. Default: the members' own (their input contract)."))
    val_batch_size: int = batch_size_field(32, "Sequences per forward pass on --val.")
    emit_mergekit_yaml: str | None = field(default=None, metadata=_help(
        "Also write the equivalent mergekit `linear` config to this file."))
    force: bool = force_field()
    quiet: bool = quiet_field()


def parse_weights(text: str | None) -> list[float] | None:
    """Stricter than a csv flag: an empty item ("1,,2") is an error, not skipped (a weight would go missing)."""
    try:
        return [float(w) for w in text.split(",")] if text else None
    except ValueError:
        raise WarmError(f"--weights {text!r}: expected comma-separated numbers") from None


@click.command("merge")
@click_options(MergeConfig)
@user_errors
def merge_command(**options) -> None:
    """Average the members' weights into one HF reward model (WARM), or a soup of them chosen on --val."""
    from warm.merge.merge import merge_models

    config = from_dict(MergeConfig, options, "warm merge")
    weights = parse_weights(config.weights)
    # This process only merges, so the merge may tune malloc for the whole process (see merge._blockwise_runtime).
    common = dict(force=config.force, allow_mixed_init=config.allow_mixed_init, max_shard_bytes=config.max_shard_size,
                  tune_process=True, lora_output=config.lora_output, lora_base=config.lora_base,
                  progress=not config.quiet)
    if config.top_m is not None or config.greedy:
        from warm.merge.soups import soup_merge

        if config.top_m is not None and config.greedy:
            raise WarmError("--top-m and --greedy: choose one soup")
        if weights is not None:
            raise WarmError("--weights: a soup (--top-m, --greedy) averages its selection uniformly")
        if config.val is None:
            raise WarmError(f"{'--greedy' if config.greedy else '--top-m'} needs --val FILE (validation pairs)")
        info = soup_merge(list(config.members), config.out, "greedy" if config.greedy else "top_m", config.val,
                          k=config.top_m, max_length=config.val_max_length, batch_size=config.val_batch_size,
                          log=click.echo, **common)
    elif config.val is not None:
        raise WarmError("--val is used by --top-m or --greedy only")
    else:
        info = merge_models(list(config.members), config.out, weights=weights, **common)
    click.echo(f"merged {len(info['members'])} members into {config.out} "
               f"(weights {', '.join(f'{w:.3g}' for w in info['weights'])})")
    if config.emit_mergekit_yaml:
        from warm.merge.mergekit import write_mergekit_yaml

        click.echo(f"mergekit config written to {write_mergekit_yaml(config.emit_mergekit_yaml, info, config.out)}")
