"""The GPU script (experiments/gpu.sh -> experiments/gpu.py) at tiny scale on a CPU, so that its first run on a
device machine is not its first run: a bfloat16 backbone as it travels, the derived configs, the archive."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
POOL = str(REPO.parent / "shared" / "data" / "alpacaeval_gold" / "responses.jsonl.gz")


def bf16_copy(backbone: Path, dest: Path) -> Path:
    shutil.copytree(backbone, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(backbone / "model.safetensors")
    save_file({k: v.bfloat16().contiguous() for k, v in tensors.items()}, dest / "model.safetensors",
              metadata={"format": "pt"})
    return dest


def test_gpu_script_runs_the_experiments_and_archives_them(tmp_path, tiny_backbone_dir):
    assert Path(POOL).is_file(), f"{POOL}: the shared pool is missing"
    backbone = bf16_copy(tiny_backbone_dir, tmp_path / "backbone-bf16")
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "POOL": POOL, "BACKBONE": str(backbone), "SCALE": "0.01", "MAX_LENGTH": "32",
           "EXPERIMENTS": "corruption", "BUDGET_MIN": "60"}
    done = subprocess.run(["bash", str(REPO / "experiments" / "gpu.sh")], check=False, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with tarfile.open(tmp_path / "out" / "gpu-results.tgz") as archive:
        names = set(archive.getnames())
    assert {"results/corruption.metrics.json", "results/corruption.section.md", "results/gpu_run.json",
            "results/corruption.yaml", "log.txt"} <= names
    run = json.loads((tmp_path / "work" / "results" / "gpu_run.json").read_text())
    assert list(run["experiments"]) == ["corruption"] and run["skipped"] == []
    # the backbone travelled in bfloat16 and was trained from an exact float32 copy
    upcast = load_file(Path(run["backbone"]) / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in upcast.values())
    original = load_file(backbone / "model.safetensors")
    assert all(torch.equal(upcast[k], original[k].float()) for k in original)
    corruption = json.loads((tmp_path / "work" / "results" / "corruption.metrics.json").read_text())
    assert corruption["run"]["config"]["training"]["max_length"] == 32
    assert corruption["run"]["scale"] == 0.01
    recipe = yaml.safe_load((REPO / "experiments" / "corruption.yaml").read_text(encoding="utf-8"))
    assert corruption["run"]["config"]["data"]["n_train"] == round(recipe["data"]["n_train"] * 0.01)


def test_the_frontier_is_derived_at_the_recipe_length_and_below():
    sys.path.insert(0, str(REPO / "experiments"))
    from gpu import derived_config

    config = derived_config("frontier", "pool.jsonl.gz", "bb", 512, 64, "auto")
    assert config["params"]["max_lengths"] == [128, 256, 512] and config["params"]["probe_lengths"] == [512]
    assert config["training"] == {**config["training"], "model": "bb", "max_length": 512, "batch_size": 64}
    assert config["data"]["source"] == "pool.jsonl.gz" and config["name"] == "frontier-gpu"


def test_gpu_script_skips_what_would_start_after_the_budget(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "gpu.py"), "--pool", POOL, "--backbone", "x",
                           "--out", str(tmp_path / "out"), "--budget-min", "-1"], check=False, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((tmp_path / "out" / "gpu_run.json").read_text())
    assert run["experiments"] == {} and run["skipped"] == list(json.loads(done.stdout.splitlines()[-1])["skipped"])
    assert run["skipped"][0] == "frontier"
