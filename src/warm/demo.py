"""`warm demo` (`make demo`): the whole WARM pipeline on the bundled data with the packaged MiniLM.

Sized to finish in under 15 minutes on 2 CPU cores (measured numbers in docs/results/demo.md). Every stage
writes its files under the run directory and is skipped when already finished, so an interrupted demo resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from warm.cli_util import user_errors
from warm.config import InitConfig, TrainConfig, _help, click_options, force_field, from_dict
from warm.data.demo import demo_path
from warm.fileio import write_json
from warm.rundir import INIT_FILE, TrainRun


@dataclass(frozen=True)
class DemoScale:
    train_pairs: int
    eval_pairs: int
    members: int
    max_length: int
    epochs: float


# Learning rates lie in the paper's range (1e-5 to 1e-4, Ramé et al. 2024, Sec. 3.1), its upper part: a
# 22M-parameter encoder sees only a few hundred steps here, and 1e-5 barely moves it in that budget.
DEMO_LR = (5e-5, 1e-4, 7e-5)
DEMO_DROPOUT = (0.1, 0.05)
# The recipe frontier (docs/results/long-inputs.md) found distinct pairs per member worth more than tokens per
# answer on 2 cores: at the same CPU, 128 tokens matched 256 and kept more of the length-adversarial pairs. So the
# budget goes to 1,200 pairs per member at 128 tokens, with 3 members instead of 4 x 640.
FULL = DemoScale(train_pairs=1200, eval_pairs=400, members=3, max_length=128, epochs=1.0)
FAST = DemoScale(train_pairs=64, eval_pairs=48, members=2, max_length=64, epochs=1.0)


def _stage(name: str) -> None:
    click.secho(f"\n== {name}", bold=True)


@dataclass(frozen=True)
class DemoConfig:
    out: str = field(default="runs/demo", metadata=_help("Run directory."))
    fast: bool = field(default=False, metadata=_help("A much smaller run (a minute or two) to check the set-up."))
    force: bool = force_field("Start again instead of resuming the existing run.")


@click.command("demo")
@click_options(DemoConfig)
@user_errors
def demo_command(**options) -> None:
    """The whole pipeline on the bundled data with the packaged MiniLM: init, 3 members, merge, eval."""
    c = from_dict(DemoConfig, options, "warm demo")
    run_demo(Path(c.out), fast=c.fast, force=c.force)


def run_demo(out: Path, fast: bool = False, force: bool = False) -> dict:
    scale = FAST if fast else FULL
    start = time.perf_counter()
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "demo_config.json", {"scale": scale.__dict__, "lr": DEMO_LR, "dropout": DEMO_DROPOUT, "fast": fast})

    _stage("1/4 shared init: packaged all-MiniLM-L6-v2 + one reward head")
    t = time.perf_counter()
    from warm.train.init import build_init

    run = TrainRun(out)
    init_dir = run.init
    if force or not (init_dir / INIT_FILE).exists():
        build_init(InitConfig(out=str(init_dir), head_seed=0, force=True))
    timings["init"] = time.perf_counter() - t

    _stage(f"2/4 train {scale.members} members on {scale.train_pairs} pairs (diverse lr, dropout, data order)")
    t = time.perf_counter()
    from warm.train.launcher import run_training

    train = run_training(TrainConfig(
        init=(str(init_dir),), data=str(demo_path("train")), out=str(out), members=scale.members,
        lr=DEMO_LR, dropout=DEMO_DROPOUT, epochs=scale.epochs, batch_size=16, max_length=scale.max_length,
        limit=scale.train_pairs, force=force,
    ))
    timings["train"] = time.perf_counter() - t

    _stage("3/4 merge: uniform weight average of the members (WARM)")
    t = time.perf_counter()
    from warm.merge.merge import merge_models

    member_dirs = [str(run.member(name)) for name in train["members"]]
    merge_models(member_dirs, run.warm, force=True)
    timings["merge"] = time.perf_counter() - t

    _stage("4/4 evaluate members, WARM and ENS on train, in-distribution and out-of-distribution pairs")
    t = time.perf_counter()
    from warm.data.formats import load_preferences, save_preferences
    from warm.evaluate.runner import run_eval

    splits = {}
    for split, source in (("train", run.data_file), ("id", demo_path("test_id")), ("ood", demo_path("test_ood"))):
        data = load_preferences(str(source), limit=scale.eval_pairs)
        splits[split] = str(save_preferences(data, run.data_file.parent / f"eval_{split}.jsonl.gz"))
    # Each model reads the splits by its own contract: the length it was trained with.
    metrics = run_eval({"warm": str(run.warm)}, {"ens": ",".join(member_dirs)}, splits, run.eval_metrics,
                       batch_size=32)
    timings["eval"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    write_json(out / "demo_timings.json", timings)
    click.echo(f"\nwall time {timings['total'] / 60:.1f} min "
               f"(init {timings['init']:.0f}s, train {timings['train']:.0f}s, merge {timings['merge']:.0f}s, eval {timings['eval']:.0f}s)")
    click.echo(f"outputs under {out}/: plan.json, members/, warm/, eval/metrics.json, eval/report.md")
    return {"metrics": metrics, "timings": timings}
