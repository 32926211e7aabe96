"""`warm check MODEL_DIR`: does every tool that loads this model compute the reward warm computes?"""

from __future__ import annotations

import click

from warm.cli_util import user_errors


@click.command("check")
@click.argument("model_dir")
@click.option("--data", default=None, help="Preference pairs to sample (text prompt/chosen/rejected). Default: the "
                                          "bundled out-of-distribution demo split.")
@click.option("--limit", default=20, show_default=True, help="Pairs to score (both responses of each).")
@click.option("--policy", default=None, help="The RL policy whose chat template renders OpenRLHF's queries (a model "
                                            "directory, or packaged:smollm2-135m-instruct). Default: the reward "
                                            "model's own tokenizer stands in for it.")
@click.option("--path", "only", multiple=True, help="Check only this path (repeatable); default: all.")
@click.option("--tolerance", default=1e-4, show_default=True,
              help="Largest absolute reward difference (fp32) a compatible path may show.")
@click.option("--out", default=None, help="Also write the report as JSON here.")
@user_errors
def check_command(model_dir, data, limit, policy, only, tolerance, out) -> None:
    """Score a sample of pairs through every consumer of a reward model (warm's TRL reward function, the model
    card's transformers snippet, pipeline, TRL's reward-model path, a RewardBench-style run, warm serve called as
    OpenRLHF calls it) and compare each with warm's own reward. Exits 1 when a path declared compatible disagrees
    by more than --tolerance; paths whose package is missing are reported as skipped."""
    from warm.check.run import markdown, ok, run_check
    from warm.fileio import write_json

    report = run_check(model_dir, data=data, limit=limit, policy=policy, tolerance=tolerance, only=tuple(only),
                       log=lambda message: click.echo(message, err=True))
    contract = report["contract"]
    click.echo(f"{report['model']}: {report['n_pairs']} pairs from {report['sample']}; contract: "
               f"{contract['rendering']} ({contract['template']} template), add_special_tokens="
               f"{contract['add_special_tokens']}, max length {contract['max_length']} "
               f"({report['n_cut']} of {2 * report['n_pairs']} inputs cut)")
    click.echo(markdown(report))
    if out:
        write_json(out, report)
    if not ok(report):
        failed = [e["path"] for e in report["paths"] if e["status"] == "FAILED"]
        click.echo(f"error: {', '.join(failed)} declared compatible but disagree(s) with warm's reward", err=True)
        raise SystemExit(1)
