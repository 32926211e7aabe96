"""`warm sft`'s options: one frozen dataclass, turned into the command's flags (help written once, here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from warm.config import _help, column_field, precision_field, trust_remote_code_field
from warm.defaults import DEFAULT_BACKBONE
from warm.errors import WarmError


@dataclass(frozen=True)
class SFTConfig:
    out: str = field(metadata=_help("Directory of the run: step-NNNNNN/ checkpoints and sft.json."))
    data: str = field(metadata=_help(
        "Text to train on: a local file (.jsonl[.gz], .json, .parquet, .csv) or a datasets name. Rows with "
        "chosen/rejected columns give two sequences each, prompt+chosen and prompt+rejected; otherwise "
        "--text-fields, by default instruction,output (the AlpacaEval pool's fields)."))
    save_steps: tuple[int, ...] = field(metadata=_help(
        "Optimiser steps at which to save a checkpoint (DIR/step-000100, ...); training stops at the largest.",
        cli="csv"))
    model: str = field(default=DEFAULT_BACKBONE, metadata=_help(
        "Backbone to continue training: a local HF directory or hub id. Default: the packaged all-MiniLM-L6-v2."))
    text_fields: tuple[str, ...] = field(default=(), metadata=_help(
        "Columns making one sequence: the last is the response, the ones before it (joined by newlines) the "
        "prompt. Default: chosen/rejected pairs if present, else instruction,output, else text.", cli="csv"))
    prompt_key: str = column_field("prompt")
    chosen_key: str = column_field("chosen")
    rejected_key: str = column_field("rejected")
    objective: str = field(default="auto", metadata=_help(
        "auto, mlm or clm. auto: masked LM for encoders, causal LM for decoders (from the model config)."))
    lr: float = field(default=5e-5, metadata=_help(
        "Peak learning rate (linear warm-up, then linear decay to the last save step)."))
    batch_size: int = field(default=16, metadata=_help("Sequences per optimiser step."))
    max_length: int = field(default=128, metadata=_help(
        "Token budget per sequence, cut as for reward models: the prompt loses its start first."))
    mlm_probability: float = field(default=0.15, metadata=_help("Fraction of tokens masked (masked LM only)."))
    warmup_ratio: float = field(default=0.1, metadata=_help("Fraction of steps with linear learning-rate warm-up."))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay."))
    seed: int = field(default=0, metadata=_help("Seed of the data order, the masking and a newly drawn LM head."))
    precision: str = precision_field("Training", note="Weights stay float32 under bf16 autocast.")
    limit: int | None = field(default=None, metadata=_help("Use only the first N rows of the data."))
    trust_remote_code: bool = trust_remote_code_field()
    force: bool = field(default=False, metadata=_help("Replace checkpoints written by a run with other settings or data."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_fields", tuple(self.text_fields or ()))  # the CLI gives None when unset
        steps = tuple(self.save_steps or ())
        if not steps or any(s < 1 for s in steps):
            raise WarmError(f"--save-steps {list(steps)}: give one or more positive step numbers")
        object.__setattr__(self, "save_steps", tuple(sorted(set(steps))))
        if self.objective not in ("auto", "mlm", "clm"):
            raise WarmError(f"--objective {self.objective!r}: expected auto, mlm or clm")
        if not 0.0 < self.mlm_probability < 1.0:
            raise WarmError(f"--mlm-probability {self.mlm_probability}: expected a fraction in (0, 1)")
