"""`make bench`, merge rows: `warm merge` (the CLI) against mergekit `linear` and against this disk's I/O bound.

Everything is benchmarks/merge_bench.py's (one owner): the members (SmolLM2-135M float32 plus seeded noise, single
`model.safetensors` each), the disk probe, the cache eviction before every run, the commands and the
`/usr/bin/time -v` record (wall time, peak RSS). Here only the loop: per M, per repeat, the tools in rotated order;
on the last repeat the outputs are checked against the float64 mean of the members (and each other).
Without mergekit's environment (runs/bench-venv-mergekit, `make bench` sets it up) only warm runs: the rows against
mergekit then say "not run", and the I/O-bound row is still measured.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from benchmarks.smollm2_checkpoint import source_of

from benchmarks.merge_bench import compare, dir_bytes, evict, io_bound_s, make_members, measure_disk, \
    mergekit_command, timed, warm_command, weight_files

NOISE, SEED = 1e-3, 0  # merge_bench's defaults: members 1e-3 x RMS apart


def merge_section(base: Path, work: Path, counts: list[int], repeats: int, probe_gb: float, warm: Path,
                  mergekit: Path, rotate) -> dict:
    tools = ["warm", "mergekit"] if mergekit.exists() else ["warm"]
    members_all = make_members(base, work / "members", max(counts), NOISE, SEED, "single", 200)
    disk = measure_disk(work / "probe", probe_gb)
    paths = SimpleNamespace(warm=warm, mergekit=mergekit)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    out = {"base": str(base), "base_source": source_of(base), "disk": disk, "tools": tools,
           "mergekit": None if mergekit.exists() else f"{mergekit} missing (`make bench` installs it)", "M": {}}
    for count in counts:
        members = members_all[:count]
        files = [f for member in members for f in weight_files(member)]
        size = dir_bytes(members[0])
        outputs = {tool: work / "outputs" / f"M{count}-{tool}" for tool in tools}
        samples = []
        for rep in range(repeats):
            order = rotate(tools, rep)
            sample = {"repeat": rep, "order": order}
            for tool in order:
                shutil.rmtree(outputs[tool], ignore_errors=True)
                evict(files)
                log = work / "logs" / f"M{count}-{tool}-r{rep}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                if tool == "warm":
                    cmd = warm_command(paths, members, outputs[tool], None)
                else:
                    cmd = mergekit_command(paths, members, outputs[tool], None, log.with_suffix(".yml"))
                sample[tool] = {**timed(cmd, log, env), "command": " ".join(cmd)}
            print(f"  merge M={count} run {rep}: " + ", ".join(
                f"{t} {sample[t]['wall_s']:.1f} s {sample[t]['peak_rss_MiB']:.0f} MiB" for t in tools), flush=True)
            samples.append(sample)
        equality = compare(members, outputs)
        for path in outputs.values():
            shutil.rmtree(path, ignore_errors=True)
        out["M"][str(count)] = {
            "member_bytes": size,
            "io_bound_s": io_bound_s(count, size, disk),
            "equality": equality, "samples": samples}
    return out
