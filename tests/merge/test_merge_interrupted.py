"""A merge stopped mid-write (SIGTERM, Ctrl-C, kill -9) leaves no output, and nothing its next run does not remove."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from warm.merge.merge import merge_models

MIB = 2**20


@pytest.fixture(scope="module")
def big_members(tmp_path_factory) -> list[Path]:
    """Two members of 3 x 48 MiB float32 tensors (the merge streams them in blocks, into a ~144 MiB output)."""
    root = tmp_path_factory.mktemp("big")
    members = []
    for i in range(2):
        member = root / f"m{i}"
        member.mkdir()
        generator = torch.Generator().manual_seed(i)
        save_file({f"layer{k}.weight": torch.randn(48 * MIB // 4 // 1024, 1024, generator=generator) for k in range(3)},
                  member / "model.safetensors")
        (member / "config.json").write_text('{"architectures": ["Tiny"], "model_type": "tiny"}')
        members.append(member)
    return members


# The child pauses after each tensor it writes, so a signal lands mid-write whatever the machine's speed. It puts
# Python's Ctrl-C handler back first: a shell starts background jobs with SIGINT ignored, and a child inherits that
# (e.g. `make test &`), where a merge rightly ignores Ctrl-C.
CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from warm.merge import tensor_io
add = tensor_io.CheckpointWriter.add
def slow_add(self, *args, **kwargs):
    add(self, *args, **kwargs)
    time.sleep(0.5)
tensor_io.CheckpointWriter.add = slow_add
from warm.cli import app
sys.argv = ["warm", *sys.argv[1:]]
app()
"""


def start_merge(members: list[Path], out: Path) -> subprocess.Popen:
    code = CHILD
    return subprocess.Popen([sys.executable, "-c", code, "merge", *map(str, members), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_writing(process: subprocess.Popen, out: Path, timeout: float = 60.0) -> Path:
    """The merge's temporary directory, once a weights file has appeared in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tmp in out.parent.glob(f".{out.name}.*.tmp"):
            if any(f.is_file() and f.stat().st_size > 0 for f in tmp.iterdir()):  # a shard, provisionally named
                return tmp
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.005)
    raise AssertionError("the merge never started writing")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_merge_removes_its_temporary_directory(big_members, tmp_path, how):
    out = tmp_path / "warm"
    process = start_merge(big_members, out)
    wait_for_writing(process, out)
    process.send_signal(how)
    assert process.wait(timeout=60) != 0
    assert not out.exists() and not list(tmp_path.glob(".warm.*"))


def test_a_killed_merge_is_cleaned_up_by_the_next_run(big_members, tmp_path):
    out = tmp_path / "warm"
    process = start_merge(big_members, out)
    stale = wait_for_writing(process, out)
    process.kill()  # kill -9: no handler runs, the temporary stays behind
    process.wait(timeout=60)
    assert stale.exists() and not out.exists(), (process.returncode, process.stderr.read())
    with pytest.warns(UserWarning, match="no init fingerprint"):
        merge_models(big_members, out, progress=False)
    assert (out / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".warm.*"))  # the killed run's partial shards are gone
