"""Small file helpers shared by every stage: atomic writes, JSON, hashes.

Every output is written to a temporary sibling and renamed, so an interrupted or failed command never
leaves a half-written file or directory where a finished one is expected. A temporary's name carries its writer
(`.NAME.PID@HOST.RANDOM.tmp`): a run killed outright (kill -9) leaves it behind, and the next write of the same
output on this host removes every temporary of that output whose writer is gone (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from warm.errors import WarmError


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Yield a handle on a temporary sibling of `path`; it becomes `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_owned_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs should read like any other file
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (a report is never left half-written)."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON atomically (temp file in the same directory, then rename)."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise WarmError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise WarmError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def _json_default(value: Any) -> Any:
    # numpy scalars and paths show up in metrics; JSON has no type for them.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes `final` only if the block finishes without error.

    An existing `final` is refused unless `force`; with `force` it is replaced only after the new one is complete.
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise WarmError(f"{final}: exists and is not a directory; warm never replaces a file with a directory")
    if final.exists() and not force:
        raise WarmError(f"{final}: already exists (pass --force to overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=_owned_prefix(final), suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
    try:
        yield tmp
        _readable_files(tmp)
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=_owned_prefix(final), suffix=".old", dir=final.parent))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def scratch_directory(final: str | os.PathLike, label: str = "work") -> Iterator[Path]:
    """A working directory beside `final`, removed afterwards, and by the next write of `final` if this one is
    killed (its name carries the writer like every temporary here)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    work = Path(tempfile.mkdtemp(prefix=_owned_prefix(final), suffix=f"-{label}.tmp", dir=final.parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _owned_prefix(final: Path) -> str:
    host = socket.gethostname().replace(".", "_") or "host"
    return f".{final.name}.{os.getpid()}@{host}."


def remove_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `final` left by writers that are gone (killed on this host); return them.

    Temporaries of a live writer, or of one on another host (a shared filesystem), are left alone.
    """
    final = Path(final)
    if not final.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{final.name}.") + r"(\d+)@([^.]*)\.[^.]+\.(?:tmp|old)$")
    host = socket.gethostname().replace(".", "_") or "host"
    removed = []
    for candidate in final.parent.iterdir():
        match = pattern.match(candidate.name)
        if match and match.group(2) == host and not _alive(int(match.group(1))):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _readable_files(directory: Path) -> None:
    """Files written private (0600: safetensors' writer, mkstemp) get the mode of every other output."""
    mode = 0o666 & ~_umask()
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077 == 0:
            os.chmod(path, mode)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(payload: Any) -> str:
    """A stable hash of a JSON-able value (keys sorted), used for plan and config fingerprints."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
