"""`warm train --launcher ray`: members as Ray tasks on a local Ray instance, one retry, resume, same layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from conftest import write_pairs  # noqa: E402
from warm.config import InitConfig, TrainConfig  # noqa: E402
from warm.errors import WarmError  # noqa: E402
from warm.fileio import read_json  # noqa: E402
from warm.train.init import build_init
from warm.train.launcher import run_training  # noqa: E402
from warm.train.ray_launcher import ray_executor, train_member_task  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    # Workers cannot import this test module by name: ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def flaky_task(run_dir, plan, member, pairs, margins):
    """m00 fails on its first attempt only; m01 fails on every attempt. Attempts are counted in files."""
    attempts = Path(run_dir) / f"attempts-{member['name']}"
    with open(attempts, "a") as handle:
        handle.write("x")
    if member["name"] == "m01" or attempts.stat().st_size == 1:
        raise RuntimeError(f"simulated failure of {member['name']}")
    return train_member_task(run_dir, plan, member, pairs, margins)


def test_ray_trains_members_retries_once_and_resumes(local_ray, tiny_backbone_dir, tmp_path):
    init = tmp_path / "init"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(init)), progress=False)
    config = TrainConfig(init=(str(init),), data=str(write_pairs(tmp_path / "pairs.jsonl", n=16)), out=str(tmp_path / "run"),
                         members=2, lr=(1e-3, 5e-4), dropout=(0.0, 0.1), max_steps=2, batch_size=4, max_length=32,
                         launcher="ray")
    run = tmp_path / "run"
    with pytest.raises(WarmError, match=r"run/members/m01: training failed on Ray \(RuntimeError: simulated failure of m01\)"):
        run_training(config, progress=False, executor=ray_executor(task=flaky_task))
    assert (run / "attempts-m00").read_text() == "xx"  # failed once, retried once, finished
    assert (run / "attempts-m01").read_text() == "xx"  # failed twice: given up after one retry
    assert (run / "members" / "m00" / "warm_member.json").exists() and not (run / "members" / "m01").exists()
    assert set(read_json(run / "train_metrics.json")["members"]) == {"m00"}

    # Rerun with the launcher --launcher ray selects: only the unfinished member runs; the layout is the local one.
    finished = (run / "members" / "m00" / "warm_member.json").stat().st_mtime_ns
    metrics = run_training(config, progress=False)
    assert list(metrics["members"]) == ["m00", "m01"] and metrics["members"]["m01"]["steps"] == 2
    assert (run / "members" / "m00" / "warm_member.json").stat().st_mtime_ns == finished
    meta = read_json(run / "members" / "m01" / "warm_member.json")
    assert meta["plan_entry"]["dropout"] == 0.1 and (run / "members" / "m01" / "model.safetensors").exists()
    assert not list((run / "members").glob(".*"))


def test_bad_launcher_and_resources_are_refused(tmp_path):
    config = TrainConfig(init=("nowhere",), data="nothing", out=str(tmp_path / "run"), launcher="slurm")
    with pytest.raises(WarmError, match="--launcher 'slurm': expected one of local, ray"):
        run_training(config, progress=False)
    with pytest.raises(WarmError, match="--cpus-per-member 0: must be positive"):
        ray_executor(cpus_per_member=0)
    assert not (tmp_path / "run").exists()  # refused before any work
