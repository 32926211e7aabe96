"""Merge benchmark (issue 7): warm's streaming merge against mergekit `linear` on M copies of SmolLM2-135M.

    .venv/bin/python benchmarks/merge_bench.py --out runs/bench/merge      # M = 2, 4, 6; ~10 min on 2 cores

What it does, in one run so that both tools see the same machine state:
1. builds the inputs: SmolLM2-135M-Instruct as float32 safetensors (benchmarks/smollm2_checkpoint.py), then
   max(M) copies, each plus seeded Gaussian noise of `--noise` times the tensor's RMS, saved as HF directories
   (single model.safetensors, and with `--layouts single,sharded` also as transformers-style shards of
   `--shard-mb` MB with model.safetensors.index.json). Generated under --out, never committed; reused when the
   manifest (base model, seed, noise, layout) matches.
2. measures this disk's sequential bandwidth with a --probe-gb file: write with fsync, read after evicting the
   file from the page cache (posix_fadvise DONTNEED, no root needed), and read again from the page cache.
3. for each layout and M: merges with `warm merge` (the CLI), with `python -c "merge_models(...)"` (warm-api: the
   same merge without the CLI's imports) and with `mergekit-yaml` (merge_method linear, dtype float32, its own
   virtual environment, default options) as subprocesses under /usr/bin/time -v, --repeats times each, rotating
   which runs first; before every run the inputs are flushed and evicted from the page cache (`--cache cold`,
   default) or read once (`--cache warm`). Records wall time, peak RSS, CPU time, block I/O and load average;
   the table shows medians.
4. checks both outputs tensor by tensor against the float64 mean of the members and against each other.
5. prints a table and writes `merge_bench.json` under --out.

The I/O bound of a merge is the time to read M inputs at the measured cold read bandwidth plus writing one output
at the measured fsync'd write bandwidth: `M * size / read_bw + size / write_bw`. Neither tool fsyncs, so its
written bytes may still sit in the page cache when it exits; the bound is the durable, cold-cache figure.

Setting up mergekit (a separate environment, for the benchmark only; torch first so pip keeps the CPU build):
    python3 -m venv runs/bench-venv-mergekit
    runs/bench-venv-mergekit/bin/pip install torch==2.13.0 && runs/bench-venv-mergekit/bin/pip install mergekit
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "src"))

from benchmarks.smollm2_checkpoint import cached_smollm2, source_of  # noqa: E402
from warm.merge.tensor_io import CheckpointReader, CheckpointWriter  # noqa: E402

MANIFEST = "bench_member.json"
MIB = 1 << 20
# Equal "within float tolerance": both tools return a float32 rounding of the same mean; they may round
# differently (warm accumulates in float64, mergekit sums in float32), so allow a few float32 ulps.
RTOL, ATOL = 1e-5, 1e-6


# ---------------------------------------------------------------------------------------------------- inputs
def make_members(base: Path, root: Path, count: int, noise: float, seed: int, layout: str, shard_mb: int) -> list[Path]:
    """`count` perturbed copies of `base` under root/<layout>/mNN (reused when their manifest matches)."""
    members = []
    base_info = source_of(base)
    for i in range(count):
        dest = root / layout / f"m{i:02d}"
        want = {"base": str(base), "base_source": base_info.get("source"), "base_created": base_info.get("created"),
                "noise_rel_std": noise, "seed": seed, "member": i, "layout": layout,
                "shard_mb": shard_mb if layout == "sharded" else None}
        manifest = dest / MANIFEST
        if manifest.is_file() and json.loads(manifest.read_text()) == want:
            members.append(dest)
            continue
        shutil.rmtree(dest, ignore_errors=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for path in base.iterdir():  # config, tokenizer, ... (not the weights, not the provenance record)
            if path.is_file() and not path.name.startswith("model") and path.suffix != ".safetensors":
                shutil.copy2(path, tmp / path.name)
        generator = torch.Generator().manual_seed(seed * 1000 + i)
        max_bytes = shard_mb * 1000 * 1000 if layout == "sharded" else None
        with CheckpointReader(base) as reader, CheckpointWriter(tmp, max_shard_bytes=max_bytes) as writer:
            for name in reader.names():
                tensor = reader.get(name)
                if tensor.is_floating_point():
                    rms = float(tensor.float().pow(2).mean().sqrt()) or 1.0
                    tensor = tensor + (noise * rms) * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                writer.add(name, tensor)
        manifest_tmp = tmp / MANIFEST
        manifest_tmp.write_text(json.dumps(want, indent=2) + "\n")
        os.replace(tmp, dest)
        members.append(dest)
    return members


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir() if p.suffix == ".safetensors")


def dir_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in weight_files(model_dir))


# ---------------------------------------------------------------------------------------------------- page cache
def evict(paths: list[Path]) -> None:
    """Flush and drop the files' pages from the page cache (posix_fadvise DONTNEED: per file, no root needed)."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_all(path: Path, block: int = 16 * MIB) -> int:
    total = 0
    buffer = bytearray(block)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            total += n
    return total


def cached_fraction(paths: list[Path]) -> float | None:
    """Share of the files' pages in the page cache (util-linux fincore), None when fincore is unavailable."""
    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES,SIZE", *map(str, paths)], capture_output=True, text=True)
    if out.returncode:
        return None
    res = size = 0
    for line in out.stdout.split("\n"):
        if line.strip():
            r, s = line.split()
            res, size = res + int(r), size + int(s)
    return res / size if size else None


def measure_disk(directory: Path, size_gb: float) -> dict:
    """Sequential write (fsync'd) and read (cold: after eviction; warm: from the page cache) in MB/s."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "disk_probe.bin"
    block = os.urandom(16 * MIB)
    blocks = max(1, int(size_gb * 1e9) // len(block))
    os.sync()
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as handle:
        for _ in range(blocks):
            handle.write(block)
        os.fsync(handle.fileno())
    write_s = time.perf_counter() - start
    size = blocks * len(block)
    reads = []
    for _ in range(2):
        evict([path])
        start = time.perf_counter()
        read_all(path)
        reads.append(time.perf_counter() - start)
    start = time.perf_counter()
    read_all(path)
    warm_s = time.perf_counter() - start
    path.unlink()
    return {"probe_bytes": size, "write_fsync_MBps": size / write_s / 1e6,
            "read_cold_MBps": size / min(reads) / 1e6, "read_cold_runs_MBps": [size / r / 1e6 for r in reads],
            "read_page_cache_MBps": size / warm_s / 1e6}


def io_bound_s(count: int, size: int, disk: dict) -> float:
    """The I/O bound of merging `count` inputs of `size` bytes (see the module docstring), from measure_disk's rates."""
    return count * size / (disk["read_cold_MBps"] * 1e6) + size / (disk["write_fsync_MBps"] * 1e6)


# ---------------------------------------------------------------------------------------------------- runs
_TIME_FIELDS = {
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "User time (seconds)": "user_s",
    "System time (seconds)": "sys_s",
    "Percent of CPU this job got": "cpu_percent",
    "File system inputs": "fs_inputs",
    "File system outputs": "fs_outputs",
    "Major (requiring I/O) page faults": "major_faults",
    "Exit status": "exit_status",
}


def parse_time_v(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in _TIME_FIELDS:
            out[_TIME_FIELDS[key]] = value.strip()
    wall = out.pop("wall")
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return {
        "wall_s": seconds,
        "peak_rss_MiB": int(out["max_rss_kb"]) / 1024,
        "user_s": float(out["user_s"]),
        "sys_s": float(out["sys_s"]),
        "cpu_percent": int(out["cpu_percent"].rstrip("%") or 0),
        # GNU time counts file system blocks of 512 bytes: the reads that reached the disk, not the page cache.
        "disk_read_bytes": int(out["fs_inputs"]) * 512,
        "disk_write_bytes": int(out["fs_outputs"]) * 512,
        "major_faults": int(out["major_faults"]),
        "exit_status": int(out["exit_status"]),
    }


def timed(cmd: list[str], log: Path, env: dict) -> dict:
    time_file = log.with_suffix(".time")
    load_before = os.getloadavg()[0]
    with open(log, "w") as handle:
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", str(time_file), *cmd], stdout=handle,
                              stderr=subprocess.STDOUT, env=env)
    result = parse_time_v(time_file.read_text())
    result["load_1min_before"], result["load_1min_after"] = load_before, os.getloadavg()[0]
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}); log {log}:\n{tail}")
    return result


def warm_command(args, members: list[Path], out: Path, shard_bytes: int | None) -> list[str]:
    cmd = [str(args.warm), "merge", *map(str, members), "--out", str(out)]
    if shard_bytes:
        cmd += ["--max-shard-size", str(shard_bytes)]
    return cmd


def warm_api_command(args, members: list[Path], out: Path, shard_bytes: int | None) -> list[str]:
    """warm's merge without its CLI: the same merge_models call, minus the import time of every CLI command."""
    code = ("import sys; from warm.merge.merge import merge_models; "
            "merge_models(sys.argv[3:], sys.argv[1], max_shard_bytes=int(sys.argv[2]) or None, tune_process=True)")
    return [str(args.warm.parent / "python"), "-c", code, str(out), str(shard_bytes or 0), *map(str, members)]


def mergekit_command(args, members: list[Path], out: Path, shard_bytes: int | None, config: Path) -> list[str]:
    lines = ["merge_method: linear", "dtype: float32", "models:"]
    for member in members:
        lines += [f"  - model: {member}", "    parameters:", "      weight: 1.0"]
    config.write_text("\n".join(lines) + "\n")
    cmd = [str(args.mergekit), str(config), str(out)]
    if shard_bytes:
        cmd += ["--out-shard-size", str(shard_bytes)]  # mergekit's TensorWriter counts bytes despite its help text
    return cmd


# ---------------------------------------------------------------------------------------------------- checks
def compare(members: list[Path], outputs: dict[str, Path]) -> dict:
    """Max abs error of each output against the float64 mean of the members, and between every two outputs."""
    readers = {tool: CheckpointReader(path) for tool, path in outputs.items()}
    inputs = [CheckpointReader(m) for m in members]
    names = inputs[0].names()
    tools = sorted(outputs)
    pairs = [(a, b) for i, a in enumerate(tools) for b in tools[i + 1:]]
    report: dict = {tool: {"max_abs_err_vs_f64_mean": 0.0, "within_tol_of_f64_mean": True} for tool in tools}
    for a, b in pairs:
        report[f"{a}_vs_{b}"] = {"max_abs_diff": 0.0, "worst_tensor": None, "allclose": True,
                                 "bitwise_equal_tensors": 0, "tensors": len(names)}
    for tool, reader in readers.items():
        extra, missing = sorted(set(reader.names()) - set(names)), sorted(set(names) - set(reader.names()))
        report[tool].update(extra_tensors=extra, missing_tensors=missing)
    for name in names:
        mean = None
        for reader in inputs:
            term = reader.get(name).to(torch.float64) / len(inputs)
            mean = term if mean is None else mean.add_(term)
        got = {tool: r.get(name) for tool, r in readers.items() if name in r.names()}
        for tool, tensor in got.items():
            rep = report[tool]
            rep["max_abs_err_vs_f64_mean"] = max(rep["max_abs_err_vs_f64_mean"],
                                                 float((tensor.to(torch.float64) - mean).abs().max()))
            ok = torch.allclose(tensor.to(torch.float64), mean, rtol=RTOL, atol=ATOL)
            rep["within_tol_of_f64_mean"] = rep["within_tol_of_f64_mean"] and ok
        for a, b in pairs:
            if a in got and b in got:
                rep = report[f"{a}_vs_{b}"]
                diff = float((got[a].to(torch.float64) - got[b].to(torch.float64)).abs().max())
                if diff > rep["max_abs_diff"]:
                    rep["max_abs_diff"], rep["worst_tensor"] = diff, name
                rep["allclose"] = rep["allclose"] and torch.allclose(got[a], got[b], rtol=RTOL, atol=ATOL)
                rep["bitwise_equal_tensors"] += int(torch.equal(got[a], got[b]))
        del mean, got
    for reader in [*readers.values(), *inputs]:
        reader.close()
    return report


# ---------------------------------------------------------------------------------------------------- main
def versions(args) -> dict:
    import safetensors
    import transformers

    import warm

    mk_python = Path(args.mergekit).parent / "python"
    mk = subprocess.run([str(mk_python), "-c",
                         "import importlib.metadata as m; print(m.version('mergekit'), m.version('torch'), "
                         "m.version('transformers'), m.version('safetensors'))"],
                        capture_output=True, text=True) if mk_python.exists() else None
    mk_versions = mk.stdout.split() if mk is not None and mk.returncode == 0 else ["?"] * 4
    git = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src/warm/merge"],
                           capture_output=True, text=True)
    return {"warm": warm.__version__, "warm_commit": git.stdout.strip() + ("+uncommitted src/warm/merge changes"
                                                                           if dirty.stdout.strip() else ""),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version(),
            "mergekit": mk_versions[0], "mergekit_env_torch": mk_versions[1],
            "mergekit_env_transformers": mk_versions[2], "mergekit_env_safetensors": mk_versions[3]}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_GiB": round(mem / 1024 / 1024, 1), "kernel": platform.release(),
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs/bench/merge", help="work and results dir")
    parser.add_argument("--members", default="2,4,6", help="comma-separated M values")
    parser.add_argument("--layouts", default="single", help="single and/or sharded (inputs AND outputs sharded)")
    parser.add_argument("--shard-mb", type=int, default=200, help="shard size of the sharded layout, MB (1e6 B)")
    parser.add_argument("--noise", type=float, default=1e-3, help="member noise std relative to each tensor's RMS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="runs per tool and M (the median is reported)")
    parser.add_argument("--cache", choices=("cold", "warm"), default="cold",
                        help="cold: evict the inputs from the page cache before each run; warm: pre-read them")
    parser.add_argument("--probe-gb", type=float, default=2.0, help="size of the disk bandwidth probe file")
    parser.add_argument("--tools", default="warm,warm-api,mergekit",
                        help="warm (the CLI), warm-api (python -c merge_models), mergekit")
    parser.add_argument("--warm", type=Path, default=REPO_ROOT / ".venv/bin/warm")
    parser.add_argument("--mergekit", type=Path, default=REPO_ROOT / "runs/bench-venv-mergekit/bin/mergekit-yaml")
    parser.add_argument("--no-compare", action="store_true", help="skip the output equality check")
    parser.add_argument("--keep-outputs", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(m) for m in args.members.split(",")]
    layouts = args.layouts.split(",")
    tools = args.tools.split(",")
    if not Path("/usr/bin/time").exists():
        sys.exit("needs GNU time at /usr/bin/time (apt-get install time)")
    if "mergekit" in tools and not args.mergekit.exists():
        sys.exit(f"{args.mergekit} missing: see this file's docstring to set up the mergekit environment")
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")

    started = datetime.datetime.now(datetime.timezone.utc)
    base = cached_smollm2()
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
               "started": started.isoformat(timespec="seconds"),
               "machine": machine(), "versions": versions(args), "base": source_of(base), "cache": args.cache,
               "noise_rel_std": args.noise, "seed": args.seed, "repeats": args.repeats, "runs": []}
    print(f"base model: {base} ({results['base']['source']})", flush=True)
    results["disk"] = disk = measure_disk(args.out / "probe", args.probe_gb)
    print(f"disk: write {disk['write_fsync_MBps']:.0f} MB/s (fsync), read {disk['read_cold_MBps']:.0f} MB/s (cold), "
          f"{disk['read_page_cache_MBps']:.0f} MB/s (page cache)", flush=True)

    for layout in layouts:
        members_all = make_members(base, args.out / "members", max(counts), args.noise, args.seed, layout,
                                   args.shard_mb)
        shard_bytes = args.shard_mb * 1000 * 1000 if layout == "sharded" else None
        size = dir_bytes(members_all[0])
        for m_index, count in enumerate(counts):
            members = members_all[:count]
            files = [f for member in members for f in weight_files(member)]
            row = {"layout": layout, "M": count, "member_bytes": size, "bytes_read": count * size,
                   "io_bound_s": io_bound_s(count, size, disk),
                   "tools": {}}
            samples: dict[str, list] = {tool: [] for tool in tools}
            outputs = {tool: args.out / "outputs" / f"{layout}-M{count}-{tool}" for tool in tools}
            for rep in range(args.repeats):
                shift = (m_index + rep) % len(tools)  # rotate who goes first, so no tool always follows another
                for tool in tools[shift:] + tools[:shift]:
                    out = outputs[tool]
                    shutil.rmtree(out, ignore_errors=True)
                    if args.cache == "cold":
                        evict(files)
                    else:
                        for f in files:
                            read_all(f)
                        os.sync()
                    cached = cached_fraction(files)
                    log = args.out / "logs" / f"{layout}-M{count}-{tool}-r{rep}.log"
                    log.parent.mkdir(parents=True, exist_ok=True)
                    if tool == "warm":
                        cmd = warm_command(args, members, out, shard_bytes)
                    elif tool == "warm-api":
                        cmd = warm_api_command(args, members, out, shard_bytes)
                    else:
                        cmd = mergekit_command(args, members, out, shard_bytes, log.with_suffix(".yml"))
                    sample = timed(cmd, log, env)
                    sample["inputs_cached_fraction_before"] = cached
                    sample["bytes_written"] = dir_bytes(out)
                    sample["output_files"] = sorted(p.name for p in out.iterdir())
                    sample["command"] = " ".join(cmd)
                    samples[tool].append(sample)
                    print(f"  {layout:7s} M={count} {tool:8s} run {rep}: {sample['wall_s']:6.1f} s, "
                          f"{sample['peak_rss_MiB']:7.0f} MiB peak RSS, cpu {sample['cpu_percent']}%, "
                          f"load {sample['load_1min_before']:.1f}", flush=True)
            for tool in tools:
                row["tools"][tool] = {
                    "wall_s": statistics.median(s["wall_s"] for s in samples[tool]),
                    "peak_rss_MiB": statistics.median(s["peak_rss_MiB"] for s in samples[tool]),
                    "bytes_written": samples[tool][-1]["bytes_written"],
                    "samples": samples[tool],
                }
            if not args.no_compare:
                row["equality"] = compare(members, outputs)
            if "mergekit" in row["tools"]:
                k = row["tools"]["mergekit"]
                for tool in (t for t in tools if t.startswith("warm")):
                    w = row["tools"][tool]
                    w["wall_ratio_vs_mergekit"] = w["wall_s"] / k["wall_s"]
                    w["rss_ratio_vs_mergekit"] = w["peak_rss_MiB"] / k["peak_rss_MiB"]
                    w["goal_met"] = w["wall_ratio_vs_mergekit"] <= 0.5 and w["rss_ratio_vs_mergekit"] <= 0.5
            results["runs"].append(row)
            if not args.keep_outputs:
                for out in outputs.values():
                    shutil.rmtree(out, ignore_errors=True)
            (args.out / "merge_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    results["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    (args.out / "merge_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return results


def print_table(results: dict) -> None:
    """One line per layout, M and tool: the markdown table docs/results/merge.md shows."""
    print("\n| layout | M | tool | wall s (median) | peak RSS MiB | read MB | written MB | I/O bound s | "
          "wall / mergekit | RSS / mergekit | max abs diff vs mergekit | max abs err vs f64 mean |")
    print("|" + "---|" * 12)
    for row in results["runs"]:
        eq = row.get("equality", {})
        for tool, t in row["tools"].items():
            pair = eq.get(f"{tool}_vs_mergekit") or eq.get(f"mergekit_vs_{tool}") or {}
            ratio = (f"{t['wall_ratio_vs_mergekit']:.2f}", f"{t['rss_ratio_vs_mergekit']:.2f}") \
                if "wall_ratio_vs_mergekit" in t else ("-", "-")
            diff = f"{pair['max_abs_diff']:.1e}" if pair else "-"
            err = eq.get(tool, {}).get("max_abs_err_vs_f64_mean")
            cells = [row["layout"], row["M"], tool, f"{t['wall_s']:.1f}", f"{t['peak_rss_MiB']:.0f}",
                     f"{row['bytes_read'] / 1e6:.0f}", f"{t['bytes_written'] / 1e6:.0f}", f"{row['io_bound_s']:.1f}",
                     *ratio, diff, "-" if err is None else f"{err:.1e}"]
            print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
