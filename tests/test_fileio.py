"""warm.fileio: atomic outputs, stale temporaries of killed writers, file modes, and files never become dirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from warm.errors import WarmError
from warm.fileio import atomic_directory, atomic_file, remove_stale_temporaries

HOST = socket.gethostname().replace(".", "_")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_dead_writers_are_removed_live_and_foreign_ones_kept(tmp_path):
    out = tmp_path / "model"
    dead = tmp_path / f".model.{dead_pid()}@{HOST}.abc123.tmp"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"partial")
    old = tmp_path / f".model.{dead_pid()}@{HOST}.xyz.old"
    old.mkdir()
    live = tmp_path / f".model.{os.getppid()}@{HOST}.def456.tmp"  # our parent: alive
    live.mkdir()
    elsewhere = tmp_path / f".model.{dead_pid()}@another_host.ghi.tmp"  # a shared filesystem: not ours to judge
    elsewhere.mkdir()
    other_output = tmp_path / f".other.{dead_pid()}@{HOST}.jkl.tmp"
    other_output.mkdir()
    with atomic_directory(out) as tmp:
        (tmp / "weights").write_text("done")
    assert (out / "weights").read_text() == "done"
    assert not dead.exists() and not old.exists()
    assert live.exists() and elsewhere.exists() and other_output.exists()
    stale_file = tmp_path / f".report.md.{dead_pid()}@{HOST}.q1.tmp"
    stale_file.write_text("half")
    with atomic_file(tmp_path / "report.md", "w") as handle:
        handle.write("all")
    assert not stale_file.exists() and remove_stale_temporaries(tmp_path / "report.md") == []


def test_outputs_are_readable_like_any_file_and_a_file_is_never_replaced_by_a_directory(tmp_path):
    with atomic_directory(tmp_path / "out") as tmp:
        private = tmp / "model.safetensors"
        private.write_bytes(b"x")
        os.chmod(private, 0o600)  # as safetensors' writer leaves it
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
    config = tmp_path / "config.json"
    config.write_text("{}")
    with pytest.raises(WarmError, match="config.json: exists and is not a directory"):
        with atomic_directory(config, force=True):
            pass
    assert config.read_text() == "{}"
