"""Typed, frozen configs: one per command. Each field's help is written once, here, and becomes a CLI flag.

`from_dict` refuses unknown keys (a misspelled option in an experiment file fails loudly instead of being
ignored), and `click_options` turns the fields into click options so the CLI never restates a default or a help
string. Field metadata:
  help   the help text (required)
  cli    "csv"      a tuple given as one comma-separated flag value: --lr 1e-5,4e-5
         "multiple" a tuple given by repeating the flag: --init A --init B
         "argument" a positional argument (a tuple field takes any number of them)
  flag   the flag name when it differs from the field name (underscores become dashes otherwise)
  aliases  more flag names for the same option (an option that was renamed keeps working under its old name)
  choices  the values the option takes; min (and min_open), max: a number's bounds, checked by click
  envvar   an environment variable that gives the option's value
Options several commands share (precision, a max length that overrides the models' own, bootstrap settings, ...)
are made by the `*_field` functions below, so their help is written once.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import click

from warm.errors import WarmError
from warm.defaults import DEFAULT_BACKBONE, PRECISIONS

C = TypeVar("C")


def _help(text: str, **extra: Any) -> dict:
    return {"help": text, **extra}


# --- options several commands share --------------------------------------------------------------------------------


def precision_field(what: str = "Scoring", default: str = "auto", note: str = "") -> Any:
    return field(default=default, metadata=_help(
        f"{what} precision: bf16 autocast where supported (auto), or fp32." + (f" {note}" if note else ""),
        choices=PRECISIONS))


def max_length_field(what: str = "each model", flag: str | None = None) -> Any:
    extra = {"flag": flag} if flag else {}
    return field(default=None, metadata=_help(
        f"Token budget per (prompt, response). Default: {what}'s own, from its input contract (warm_contract.json); "
        "a number reads every model at that length instead.", **extra))


def batch_size_field(default: int = 32, what: str = "Sequences per forward pass.", flag: str | None = None) -> Any:
    return field(default=default, metadata=_help(what, min=1, **({"flag": flag} if flag else {})))


def n_boot_field(over: str = "pairs") -> Any:
    return field(default=1000, metadata=_help(f"Bootstrap resamples (over {over}) for the 95% intervals.", min=1))


def seed_field(what: str = "Bootstrap seed.") -> Any:
    return field(default=0, metadata=_help(what))


def quiet_field() -> Any:
    return field(default=False, metadata=_help("No progress bars."))


def column_field(role: str) -> Any:
    """The column of a preference file that holds the prompt, the chosen or the rejected response."""
    what = {"prompt": "the prompt", "chosen": "the preferred response", "rejected": "the other response"}[role]
    return field(default=role, metadata=_help(f"Column holding {what}."))


def trust_remote_code_field() -> Any:
    return field(default=False, metadata=_help("Allow model code from the checkpoint (off by default)."))


def force_field(what: str = "Replace an existing output directory.") -> Any:
    return field(default=False, metadata=_help(what))


@dataclass(frozen=True)
class InitConfig:
    out: str = field(metadata=_help("Directory to write the shared init to (an HF reward-model directory)."))
    model: str = field(default=DEFAULT_BACKBONE, metadata=_help(
        "Base model: a local HF directory or hub id (any AutoModelForSequenceClassification-able checkpoint). "
        "Default: the packaged all-MiniLM-L6-v2."))
    head_seed: int = field(default=0, metadata=_help("Seed of the reward head, initialised once and shared by all members."))
    linear_probe: str | None = field(default=None, metadata=_help(
        "Preference data to linear-probe the head on (backbone frozen) before members fine-tune."))
    probe_steps: int = field(default=100, metadata=_help("Optimiser steps of the linear probe."))
    probe_lr: float = field(default=1e-3, metadata=_help("Learning rate of the linear probe."))
    probe_batch_size: int = field(default=16, metadata=_help("Pairs per linear-probe step."))
    max_length: int = field(default=160, metadata=_help("Token budget per (prompt, response) for the probe."))
    prompt_key: str = column_field("prompt")
    chosen_key: str = column_field("chosen")
    rejected_key: str = column_field("rejected")
    trust_remote_code: bool = trust_remote_code_field()
    force: bool = field(default=False, metadata=_help("Replace an existing output directory."))


@dataclass(frozen=True)
class TrainConfig:
    init: tuple[str, ...] = field(metadata=_help(
        "Shared init directory (from `warm init`). Repeat for the Baklava variant: members are spread over the "
        "inits, e.g. checkpoints of one SFT run.", cli="multiple"))
    data: str = field(metadata=_help("Training preference data: a local file (.jsonl[.gz], .json, .parquet, .csv) or a datasets name."))
    out: str = field(metadata=_help("Run directory: plan.json, members/mNN, data/ are written under it."))
    members: int = field(default=4, metadata=_help("Number of reward models M to fine-tune."))
    lr: tuple[float, ...] = field(default=(1e-5, 4e-5, 1e-4), metadata=_help(
        "Learning rates to spread over members (the paper's diversity source).", cli="csv"))
    dropout: tuple[float, ...] = field(default=(0.05, 0.1), metadata=_help(
        "Dropout rates to spread over members (set in the model config).", cli="csv"))
    attention_dropout: float = field(default=0.0, metadata=_help(
        "Dropout on the attention probabilities of every member (the member's --dropout goes to the hidden states). "
        "0 keeps PyTorch's fused attention kernels: on a CPU, attention dropout made training at 384 tokens 2.5x "
        "slower."))
    assign: str = field(default="round-robin", metadata=_help(
        "How members get their lr/dropout/init: round-robin or random (a seeded draw)."))
    seed: int = field(default=0, metadata=_help("Base seed: member i trains with data-order seed SEED+i; the head is never re-initialised."))
    epochs: float = field(default=1.0, metadata=_help("Epochs over the training pairs."))
    max_steps: int = field(default=-1, metadata=_help("Stop each member after this many steps (-1: use epochs)."))
    batch_size: int = field(default=16, metadata=_help("Pairs per optimiser step."))
    max_length: int = field(default=160, metadata=_help(
        "Token budget per (prompt, response); longer sequences lose the start of the prompt first."))
    warmup_ratio: float = field(default=0.1, metadata=_help("Fraction of steps with linear learning-rate warm-up."))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay."))
    checkpoints: tuple[float, ...] = field(default=(), metadata=_help(
        "Also save each member part-way, at these fractions of its training (e.g. 0.5), under "
        "members/NAME/checkpoints/step-N: two checkpoints of one run, the weakest diversity source.", cli="csv"))
    precision: str = precision_field("Training", note="Weights stay float32 under bf16 autocast.")
    limit: int | None = field(default=None, metadata=_help("Use only the first N pairs of the data."))
    corrupt: float = field(default=0.0, metadata=_help("Swap chosen/rejected on exactly this fraction of training pairs."))
    corrupt_seed: int = field(default=0, metadata=_help("Seed of the corruption draw."))
    prompt_key: str = column_field("prompt")
    chosen_key: str = column_field("chosen")
    rejected_key: str = column_field("rejected")
    lora_r: int = field(default=0, metadata=_help(
        "LoRA rank of every member (PEFT); 0 trains all weights. The reward head stays fully trainable and is saved "
        "with the adapter (modules_to_save)."))
    lora_alpha: float | None = field(default=None, metadata=_help(
        "LoRA alpha; the update is scaled by alpha/r. Default: equal to --lora-r (scaling 1)."))
    lora_dropout: float = field(default=0.0, metadata=_help("Dropout on the LoRA branch (PEFT's lora_dropout)."))
    lora_targets: tuple[str, ...] = field(default=(), metadata=_help(
        "Modules LoRA adapts, e.g. query,value or q_proj,k_proj,v_proj,o_proj. Default: PEFT's choice for the "
        "architecture.", cli="csv"))
    launcher: str = field(default="local", metadata=_help(
        "local (members one after another in this process) or ray (one Ray task per member; the run directory "
        "must be on a filesystem every Ray node sees)."))
    ray_address: str | None = field(default=None, metadata=_help(
        "Ray cluster to join, e.g. auto or ray://HOST:10001. Default: start a local Ray instance."))
    gpus_per_member: float = field(default=0.0, metadata=_help("GPUs each Ray member task reserves (may be fractional)."))
    cpus_per_member: float = field(default=1.0, metadata=_help("CPUs each Ray member task reserves."))
    force: bool = field(default=False, metadata=_help("Accept a changed plan: members whose settings changed are retrained."))


def from_dict(cls: type[C], values: dict[str, Any], where: str = "config") -> C:
    """Build a config from a mapping, refusing unknown keys and coercing lists to tuples."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise WarmError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__} (valid: {', '.join(sorted(names))})")
    hints = typing.get_type_hints(cls)
    coerced = {k: tuple(v) if _is_tuple(hints[k]) and isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**coerced)
    except TypeError as exc:
        raise WarmError(f"{where}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _is_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple


def _scalar_type(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return args[0]
    if args:  # Optional[X]
        return args[0]
    return hint


def _csv(kind: type) -> Callable[[Any, Any, Any], Any]:
    def parse(ctx, param, value):
        if value is None or isinstance(value, tuple):
            return value
        try:
            return tuple(kind(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind.__name__} values, got {value!r}") from None

    return parse


def _click_type(kind: type, meta: Any) -> Any:
    if "choices" in meta:
        return click.Choice(meta["choices"])
    if "min" in meta:
        bounded = click.IntRange if kind is int else click.FloatRange
        return bounded(min=meta["min"], max=meta.get("max"), **({"min_open": True} if meta.get("min_open") else {}))
    return kind


def click_options(cls: type, skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorate a click command with one option per config field (help and defaults from the dataclass)."""
    hints = typing.get_type_hints(cls)

    def decorate(func: Callable) -> Callable:
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            hint, meta = hints[f.name], f.metadata
            flags = ["--" + meta.get("flag", f.name.replace("_", "-")), *meta.get("aliases", ())]
            required = f.default is dataclasses.MISSING
            default = None if required else f.default
            # click >= 8.3 treats an explicit default=None as a value, so a required option must get no default at
            # all, or a missing one reaches the command as None instead of click's one-line "Missing option".
            defaulted = {} if required else {"default": default}
            kind = _scalar_type(hint)
            if meta.get("cli") == "argument":
                func = click.argument(f.name, nargs=-1 if _is_tuple(hint) else 1, required=True)(func)
                continue
            if "envvar" in meta:
                option = click.option(*flags, f.name, **defaulted, envvar=meta["envvar"], show_envvar=True,
                                      help=meta["help"])
            elif kind is bool:
                option = click.option(*flags, f.name, is_flag=True, default=bool(default), help=meta["help"])
            elif meta.get("cli") == "multiple":
                option = click.option(*flags, f.name, multiple=True, required=required, type=kind, help=meta["help"])
            elif meta.get("cli") == "csv":
                shown = {} if required else {"default": ",".join(str(v) for v in default) if default else None}
                option = click.option(*flags, f.name, **shown, required=required, callback=_csv(kind),
                                      show_default=True, help=meta["help"])
            else:
                option = click.option(*flags, f.name, type=_click_type(kind, meta), **defaulted,
                                      required=required, show_default=not required and default is not None,
                                      help=meta["help"])
            func = option(func)
        return func

    return decorate
