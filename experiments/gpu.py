"""The reward-model experiments at GPU scale, in one short run (issue: reward models that read the whole answer).

    python experiments/gpu.py --pool POOL --backbone DIR --out OUT [--scale 8] [--max-length 512] [--budget-min 9]

Each experiment YAML named below is rewritten for the run (the pool and backbone given, pair counts × --scale, the
max length of the recipe, a larger batch) and run with warm's own experiment runner, most important first; one
that would start after the time budget is skipped and marked so. Everything lands in OUT: each experiment's
metrics.json and section.md, the derived YAML, and gpu_run.json (machine, versions, wall times, skipped).

On the device machine, experiments/gpu.sh installs what the machine lacks and calls this; on a CPU,
tests/experiments/test_gpu_script.py runs it with a tiny backbone so it works the first time a GPU is there.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# Most important first: the recipe frontier at long inputs, then the paper's label-corruption claim, then the rest.
DEFAULT_EXPERIMENTS = ("frontier", "corruption", "num_members", "lmc_diversity", "best_of_n")


def derived_config(name: str, pool: str, backbone: str, max_length: int, batch_size: int, precision: str) -> dict:
    """experiments/NAME.yaml with the run's pool, backbone, recipe length and batch size."""
    raw = yaml.safe_load((REPO / "experiments" / f"{name}.yaml").read_text(encoding="utf-8"))
    raw["name"] = f"{raw['name']}-gpu"
    raw.setdefault("data", {})["source"] = pool
    training = raw.setdefault("training", {})
    training.update(model=backbone, max_length=max_length, batch_size=batch_size, precision=precision)
    if raw["kind"] == "frontier":  # the frontier's own lengths: the recipe's and two below it
        raw["params"]["max_lengths"] = sorted({max_length // 4, max_length // 2, max_length})
        raw["params"]["probe_lengths"] = [max_length]
    return raw


def float32_backbone(backbone: str, dest: Path) -> str:
    """A float32 copy of a backbone directory whose weights travelled in bfloat16 (to fit the device's transfer
    limit): transformers would otherwise load, and train, them in bfloat16. Upcasting is exact."""
    import torch
    from safetensors.torch import load_file, save_file

    source = Path(backbone)
    weights = source / "model.safetensors"
    if not weights.is_file():
        return backbone  # a packaged: or hub name, or already in float32 elsewhere
    tensors = load_file(weights)
    if all(t.dtype != torch.bfloat16 for t in tensors.values()):
        return backbone
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, dest / "model.safetensors",
              metadata={"format": "pt"})
    return str(dest)


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "host": platform.node()}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0),
                    gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    else:
        info["gpu"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True, help="The gold-scored pool (responses.jsonl.gz).")
    parser.add_argument("--backbone", required=True, help="Backbone directory (or packaged:/hub name).")
    parser.add_argument("--out", required=True, help="Where metrics, sections and gpu_run.json go.")
    parser.add_argument("--root", default=None, help="Workspace (default: OUT/../gpu-workspace).")
    parser.add_argument("--scale", type=float, default=8.0, help="Multiply every experiment's pair counts.")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--budget-min", type=float, default=9.0, help="Start no experiment after this many minutes.")
    parser.add_argument("--experiments", default=",".join(DEFAULT_EXPERIMENTS))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "src"))  # the device machine runs the checkout without installing it
    from warm.experiments.runner import run_experiment

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root) if args.root else out.parent / "gpu-workspace"
    start = time.perf_counter()
    backbone = float32_backbone(args.backbone, root / "backbone-fp32")
    report = {"args": vars(args), "backbone": backbone, "machine": machine(), "experiments": {}, "skipped": []}
    for name in args.experiments.split(","):
        elapsed = (time.perf_counter() - start) / 60
        if elapsed > args.budget_min:
            report["skipped"].append(name)
            continue
        config = derived_config(name, args.pool, backbone, args.max_length, args.batch_size, args.precision)
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        began = time.perf_counter()
        print(f"[{elapsed:5.1f} min] {name} at scale {args.scale:g}", flush=True)
        run_experiment(path, root=root, scale=args.scale, progress=False)
        produced = root / f"{config['name']}-x{args.scale:g}" if args.scale != 1.0 else root / config["name"]
        for file in ("metrics.json", "section.md"):
            shutil.copyfile(produced / file, out / f"{name}.{file}")
        report["experiments"][name] = {"wall_seconds": round(time.perf_counter() - began, 1)}
        (out / "gpu_run.json").write_text(json.dumps(report, indent=2), encoding="utf-8")  # kept after each one
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_run.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({"done": list(report["experiments"]), "skipped": report["skipped"],
                      "wall_seconds": report["wall_seconds"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
