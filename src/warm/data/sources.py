"""Where preference tables come from and go to: local files and the hub via `datasets`, JSON lines out.

Kept apart from `warm.data.formats` (what the columns mean) so the IO quirks of `datasets` live in one place.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from warm.errors import WarmError
from warm.fileio import atomic_file

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
"""File suffix -> `datasets` builder; a further `.gz` (data.jsonl.gz) is decompressed by `datasets`."""


def read_dataset(name: str, split: str = "train"):
    """A `datasets.Dataset` from a local file, a local dataset directory, or the hub."""
    import datasets

    path = Path(name)
    if path.is_dir():
        return _read_directory(name, path, split)
    builder = _builder_for(path)
    if builder is None:
        if path.exists():
            expected = ", ".join(sorted(FILE_BUILDERS))
            raise WarmError(f"{name}: unsupported file type (expected {expected}, optionally gzipped)")
        return _load_hub(name, split)
    if not path.is_file():
        raise WarmError(f"{name}: file not found")
    if builder in ("json", "csv"):
        check_utf8(name, path)  # datasets reads bytes unchecked; a bad byte would surface later as a traceback
    # A throwaway cache: local files are small enough to hold in memory, and a per-call cache cannot serve a stale
    # copy of a file rewritten in place, nor grow ~/.cache with every temporary file tests create.
    with tempfile.TemporaryDirectory(prefix="warm-datasets-") as cache, _quiet_datasets():
        kwargs: dict[str, Any] = {"data_files": str(path), "split": "train", "cache_dir": cache, "keep_in_memory": True}
        if builder == "csv":
            # CSV has no null: an empty cell is the empty string, and text such as "NA" or "None" stays text.
            kwargs["na_filter"] = False
        dataset = _load_or_fail(name, lambda: datasets.load_dataset(builder, **kwargs),
                                diagnose=(lambda: diagnose_json(path)) if builder == "json" else None)
        if builder == "json":
            dataset = _unwrap_json_document(name, dataset)
    return dataset


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bars and no logged parser errors while reading a local file: warm reports failures itself."""
    import datasets
    from datasets.utils import logging as ds_logging

    bars_were_off, level = datasets.are_progress_bars_disabled(), ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if not bars_were_off:
            datasets.enable_progress_bars()


def _builder_for(path: Path) -> str | None:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] == ".gz":
        suffixes.pop()
    return FILE_BUILDERS.get(suffixes[-1]) if suffixes else None


def _unwrap_json_document(name: str, dataset):
    """A .json holding one object: {"data": [rows]} (datasets' `field=`) or {"col": [values]} (columns) -> rows."""
    from datasets import Dataset

    if len(dataset) != 1:
        return dataset
    row = dataset[0]
    values = list(row.values())
    if len(values) == 1 and isinstance(values[0], list) and values[0] and all(isinstance(v, dict) for v in values[0]):
        return _as_table(name, lambda: Dataset.from_list(values[0]), values[0])
    if values and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        if not any(isinstance(v[0], dict) for v in values if v):  # a single conversational row stays a row
            return _as_table(name, lambda: Dataset.from_dict(row),
                             [dict(zip(row, cells)) for cells in zip(*row.values())])
    return dataset


def _as_table(name: str, build, rows: list[dict]):
    """`build()`, or a WarmError naming the first field whose values are of two kinds (Arrow needs one per column)."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own type, datasets wraps it in others
        kinds: dict[str, tuple[str, int]] = {}
        for number, row in enumerate(rows, start=1):
            clash = _kind_clash(kinds, row, number)
            if clash:
                key, kind, (first_kind, first_row) = clash
                raise WarmError(f"{name}: row {number}: field '{key}' is {kind}, but {first_kind} in row "
                                f"{first_row}") from None
        raise WarmError(f"{name}: cannot read ({error_summary(exc)})") from None


def _load_hub(name: str, split: str):
    import datasets
    from huggingface_hub import is_offline_mode

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; the user needs one line, not a trace
        why = "the Hugging Face hub is offline (HF_HUB_OFFLINE=1)" if is_offline_mode() else error_summary(exc)
        raise WarmError(f"{name}: not a local file and cannot be loaded as a hub dataset ({why})") from None


def _read_directory(name: str, path: Path, split: str):
    """A dataset saved with `save_to_disk`, or a folder of data files; anything else is refused in one line."""
    import datasets

    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        loaded = _load_or_fail(name, lambda: datasets.load_from_disk(str(path)))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise WarmError(f"{name}: no split {split!r} (splits: {', '.join(loaded)})")
            loaded = loaded[split]
        return loaded
    if not any(_builder_for(f) for f in path.rglob("*") if f.is_file()):
        raise WarmError(f"{name}: a directory with no data file in it (expected a dataset saved with save_to_disk, "
                        f"or {', '.join(sorted(FILE_BUILDERS))} files)")
    return _load_or_fail(name, lambda: datasets.load_dataset(str(path), split=split))


def read_bytes(name: str, path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz (a WarmError when it is not gzip data)."""
    if path.suffix.lower() != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut stream ends in EOFError
        raise WarmError(f"{name}: not a readable gzip file ({error_summary(exc)})") from None


def check_utf8(name: str, path: Path) -> None:
    """WarmError naming the line of the first byte that is not UTF-8."""
    data = read_bytes(name, path)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise WarmError(f"{name}: line {line}, column {column}: byte 0x{data[exc.start]:02x} is not UTF-8 "
                        "(save the file as UTF-8)") from None


_JSON_KINDS = {str: "text", list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}


def _kind_clash(kinds: dict[str, tuple[str, int]], row: dict, number: int):
    """(field, kind, (first kind, first row)) when a field of `row` changes kind; records each field's first kind."""
    for key, value in row.items():
        if value is None:
            continue
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        first = kinds.setdefault(key, (kind, number))
        if first[0] != kind:
            return key, kind, first
    return None


def diagnose_json(path: Path) -> str | None:
    """The first problem of a JSON or JSON-lines file, naming its line: invalid JSON, or a field whose kind changes
    from one row to another (which `datasets` reports as an Arrow schema error). None when none is found."""
    text = read_bytes(str(path), path).decode("utf-8")  # check_utf8 ran first
    try:
        json.loads(text)
        return None  # one JSON document: datasets' own message stands
    except json.JSONDecodeError:
        pass
    kinds: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(row, dict):
            return f"line {number}: expected a JSON object, got {_JSON_KINDS.get(type(row), 'null')}"
        clash = _kind_clash(kinds, row, number)
        if clash:
            key, kind, (first_kind, first_line) = clash
            return f"line {number}: field '{key}' is {kind}, but {first_kind} on line {first_line}"
    return None


def _load_or_fail(name: str, load, diagnose=None):
    try:
        return load()
    except (StopIteration, IndexError):  # datasets' json builder on an empty file
        raise WarmError(f"{name}: no rows") from None
    except Exception as exc:  # noqa: BLE001 - parse errors arrive wrapped in DatasetGenerationError
        summary = error_summary(exc)
        if "corresponds to no data" in summary:  # a CSV with a header and no rows
            raise WarmError(f"{name}: no rows") from None
        found = diagnose() if diagnose is not None else None
        raise WarmError(f"{name}: {found}" if found else f"{name}: cannot read ({summary})") from None


def error_summary(exc: BaseException) -> str:
    """The innermost cause's message: datasets wraps parser errors in a generic 'error occurred' exception."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write dicts as JSON lines, gzipped when the name ends in .gz, via a temporary sibling and a rename.

    The gzip header carries no name and no timestamp, so the same records give the same bytes (the bundled demo
    data is rebuilt reproducibly).
    """
    path = Path(path)
    if not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
        raise WarmError(f"{path}: warm writes JSON lines as .jsonl or .jsonl.gz only")
    with atomic_file(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:  # mtime 0: same bytes
                _write_lines(stream, records)
        else:
            _write_lines(raw, records)
    return path


def _write_lines(stream, records: Iterable[dict]) -> None:
    for record in records:
        stream.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
