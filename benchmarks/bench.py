"""`make bench`: every performance claim of warm as a side-by-side ratio, all measured in one run.

    .venv/bin/python benchmarks/bench.py                              # every section, 3 repeats: ~25 min, 2 cores
    .venv/bin/python benchmarks/bench.py --repeats 1 --sections train,score --lengths 128

Sections (each a function returning raw timings; the tools' order rotates on each repeat):
    train  `warm train` (one member) vs plain TRL RewardTrainer, pairs/s; and MFU against a bf16 GEMM (bench_train)
    score  warm's scorer vs a plain transformers loop, sequences/s (bench_score)
    serve  `warm serve` over HTTP vs the same scorer in process; WARM vs ENS served (bench_score)
    merge  `warm merge` vs mergekit `linear` (wall, peak RSS) and vs the disk's I/O bound (bench_merge)
Writes --out-json (machine, versions, load average, settings, every repeat's raw numbers, and per row the ratio
per repeat with min / median / max) and --out-md (the table, docs/results/bench.md). Models and members are built
under --work on first use and reused; delete it after changing --model or --merge-base.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks import bench_merge, bench_report, bench_score, bench_train  # noqa: E402
from warm.fileio import write_json, write_text

SECTIONS = ("train", "score", "serve", "merge")


def rotate(tools, rep: int) -> list[str]:
    """The tools in the order of repeat `rep`: each one goes first in turn, so none always follows another."""
    shift = rep % len(tools)
    return list(tools[shift:]) + list(tools[:shift])


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ", ".join(SECTIONS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", type=Path, default=REPO_ROOT / "runs/bench/all", help="models, members, logs (reused)")
    p.add_argument("--out-json", type=Path, default=REPO_ROOT / "docs/results/bench.json")
    p.add_argument("--out-md", type=Path, default=REPO_ROOT / "docs/results/bench.md")
    p.add_argument("--model", default=None, help="base of the reward model (`warm init --model`); default: warm's")
    p.add_argument("--precision", default="auto", help="training and scoring precision (auto: bf16 where supported)")
    p.add_argument("--lengths", type=ints, default=[128, 384], help="max lengths of the training and scoring rows")
    p.add_argument("--train-goal-length", type=int, default=384, help="the max length the 1.5x training goal is at")
    p.add_argument("--batch-size", type=int, default=16, help="training pairs per step")
    p.add_argument("--steps", type=int, default=6, help="timed training steps (over steps x batch pairs)")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed training steps first, in the same process")
    p.add_argument("--score-pairs", type=int, default=100, help="demo OOD pairs scored (both responses)")
    p.add_argument("--score-batch-size", type=int, default=32)
    p.add_argument("--serve-members", type=int, default=6, help="M of the served WARM merge and ENS")
    p.add_argument("--serve-clients", type=int, default=8)
    p.add_argument("--serve-items", type=int, default=4, help="items per request")
    p.add_argument("--serve-duration", type=float, default=15.0, help="seconds per closed-loop run")
    p.add_argument("--serve-max-length", type=int, default=128)
    p.add_argument("--serve-precision", default="fp32", help="`warm serve --precision` (its default: fp32)")
    p.add_argument("--inproc-items", type=int, default=512, help="items scored in process per repeat")
    p.add_argument("--merge-members", type=ints, default=[2, 6], help="M values of the merge rows")
    p.add_argument("--merge-base", type=Path, default=None, help="model to merge copies of; default: SmolLM2-135M")
    p.add_argument("--probe-gb", type=float, default=2.0, help="size of the disk bandwidth probe file")
    p.add_argument("--warm", type=Path, default=REPO_ROOT / ".venv/bin/warm")
    p.add_argument("--mergekit", type=Path, default=REPO_ROOT / "runs/bench-venv-mergekit/bin/mergekit-yaml")
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def versions(mergekit: Path) -> dict:
    import importlib.metadata as metadata

    from benchmarks.merge_bench import versions as merge_versions

    out = merge_versions(SimpleNamespace(mergekit=mergekit))
    if not mergekit.exists():
        out = {k: val for k, val in out.items() if not k.startswith("mergekit")} | {"mergekit": "not installed"}
    for name in ("trl", "datasets", "accelerate", "fastapi", "uvicorn", "httpx"):
        out[name] = metadata.version(name)
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src", "benchmarks"],
                           capture_output=True, text=True).stdout.strip()
    out["warm_commit"] = out["warm_commit"].split("+")[0] + ("+uncommitted changes" if dirty else "")
    return out


def checks(raw: dict) -> list[str]:
    """What shows that both sides of each row did the same work."""
    out = []
    for length, part in raw.get("train", {}).items():
        trl = [s["trl"]["tokens_per_sequence"] for s in part["samples"]]
        out.append(f"training, max length {length}: {part['tokens_per_sequence']:.1f} tokens per sequence for warm, "
                   f"{sum(trl) / len(trl):.1f} for TRL (its own tokenisation of the same text)")
    for length, part in raw.get("score", {}).items():
        out.append(f"scoring, max length {length}: largest reward difference warm vs transformers "
                   f"{part['max_abs_reward_diff']:.2g} over {part['sequences']} sequences "
                   f"({part['distinct_sequences']} distinct, each scored once by warm)")
    if "serve" in raw:
        calls = [s[t]["items_per_scorer_call"] for s in raw["serve"]["samples"] for t in ("http", "ens_http")]
        out.append(f"serving: 0 errors; items per scorer call {min(calls)}-{max(calls)} over HTTP")
    if "merge" in raw:
        merge, disk = raw["merge"], raw["merge"]["disk"]
        out.append(f"merge inputs: copies of {merge['base']} ({merge['base_source'].get('source')}); disk "
                   f"{disk['write_fsync_MBps']:.0f} MB/s written with fsync, {disk['read_cold_MBps']:.0f} MB/s read "
                   "cold (the I/O bound's rates)")
    for count, part in raw.get("merge", {}).get("M", {}).items():
        eq = part["equality"]
        pair = eq.get("mergekit_vs_warm")
        out.append(f"merge M = {count}: warm within float32 tolerance of the float64 mean: "
                   f"{eq['warm']['within_tol_of_f64_mean']}" + (f"; largest difference from mergekit's output "
                                                                f"{pair['max_abs_diff']:.2g}" if pair else ""))
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from benchmarks.merge_bench import machine
    from warm.config import InitConfig
    from warm.data.demo import demo_path
    from warm.models.runtime import default_device, resolve_precision
    from warm.train.init import build_init

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    precision = resolve_precision(args.precision, default_device())
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    init = work / "serve" / "init"  # bench_score's serving models build on the same init
    if not init.is_dir() and {"train", "score", "serve"} & set(args.sections):
        build_init(InitConfig(out=str(init), **({"model": args.model} if args.model else {})), progress=False)
    logs = work / "logs"
    raw: dict = {}
    seconds = {}
    for section in args.sections:
        print(f"{section} ...", flush=True)
        section_start = time.perf_counter()
        if section == "train":
            train = {"init": str(init), "data": str(demo_path("train")), "precision": precision,
                     "batch_size": args.batch_size, "steps": args.steps, "warmup_steps": args.warmup_steps}
            raw["train"] = bench_train.train_section(train, args.lengths, args.repeats, rotate, logs)
        elif section == "score":
            raw["score"] = bench_score.score_section(str(init), str(demo_path("test_ood")), args.lengths,
                                                     args.score_pairs, args.score_batch_size, precision, args.repeats,
                                                     rotate)
        elif section == "serve":
            raw["serve"] = bench_score.serve_section(work / "serve", args.model, args.serve_members, args.serve_clients,
                                                     args.serve_items, args.serve_duration, args.inproc_items,
                                                     args.serve_max_length, args.serve_precision, args.repeats, rotate)
        else:
            from benchmarks.smollm2_checkpoint import cached_smollm2

            base = args.merge_base or cached_smollm2()
            raw["merge"] = bench_merge.merge_section(base, work / "merge", args.merge_members, args.repeats,
                                                     args.probe_gb, args.warm, args.mergekit, rotate)
        seconds[section] = round(time.perf_counter() - section_start, 1)
        # what is done so far, should a later section fail
        write_json(work / "raw.json", raw)
    settings = {key: (str(val) if isinstance(val, Path) else val) for key, val in vars(args).items()}
    settings["precision_resolved"] = precision
    result = {
        "command": " ".join(["python", "benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": started.date().isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(args.mergekit),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "section_seconds": seconds,
        "settings": settings,
        "rows": bench_report.build_rows(raw, settings),
        "checks": checks(raw),
        "raw": raw,
    }
    write_json(args.out_json, result)
    methods = [module.__doc__ for module in (bench_report, bench_train, bench_score, bench_merge)]
    write_text(args.out_md, bench_report.markdown(result, methods))
    print(f"wrote {args.out_json} and {args.out_md}")
    return result


if __name__ == "__main__":
    main()
