"""The command line end to end on a tiny model: init, train 2 members, merge, eval; and its error path."""

import json

from click.testing import CliRunner

from conftest import write_pairs
from warm.cli import app


def _invoke(args):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result


def test_init_train_merge_eval(tiny_backbone_dir, tmp_path):
    data = write_pairs(tmp_path / "train.jsonl", n=32, seed=0)
    test = write_pairs(tmp_path / "test.jsonl", n=16, seed=1)
    run = tmp_path / "run"
    r = _invoke(["init", "--model", str(tiny_backbone_dir), "--out", str(run / "init"), "--head-seed", "4"])
    assert r.exit_code == 0, r.output
    r = _invoke(["train", "--init", str(run / "init"), "--data", str(data), "--out", str(run), "--members", "2",
                 "--lr", "1e-3,5e-4", "--dropout", "0.1", "--max-steps", "4", "--batch-size", "4",
                 "--max-length", "32", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "m00: loss" in r.output and "pairs/s" in r.output
    assert "{'loss'" not in r.output and "'grad_norm'" not in r.output  # --quiet: no per-step log dicts
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    for weights in (run / "init" / "model.safetensors", run / "members" / "m00" / "model.safetensors"):
        assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~mask, weights  # like every other output
    members = [str(run / "members" / "m00"), str(run / "members" / "m01")]
    r = _invoke(["merge", *members, "--out", str(run / "warm")])
    assert r.exit_code == 0, r.output
    merge_info = json.loads((run / "warm" / "warm_merge.json").read_text())
    assert merge_info["weights"] == [0.5, 0.5]
    out = run / "eval" / "metrics.json"
    r = _invoke(["eval", "--model", f"warm={run / 'warm'}", "--ensemble", f"ens={','.join(members)}",
                 "--data", f"train={run / 'data' / 'train.jsonl.gz'}", "--data", f"test={test}",
                 "--out", str(out), "--max-length", "32", "--n-boot", "200"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(out.read_text())
    scorers = metrics["splits"]["test"]["scorers"]
    assert {"warm", "ens", "ens/m00", "ens/m01"} <= set(scorers)
    for entry in scorers.values():
        assert 0.0 <= entry["lo"] <= entry["accuracy"] <= entry["hi"] <= 1.0
    assert "warm - ens" in metrics["splits"]["test"]["comparisons"]
    assert (run / "eval" / "report.md").exists()


def test_user_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(app, ["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]
    r = CliRunner().invoke(app, ["eval", "--model", "warm", "--data", "x=y", "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "expected NAME=VALUE" in r.output


def test_train_options_come_from_the_config():
    r = CliRunner().invoke(app, ["train", "--help"])
    assert r.exit_code == 0
    from warm.config import TrainConfig
    import dataclasses

    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in r.output
    assert "1e-05,4e-05,0.0001" in r.output  # the default learning rates, shown once
