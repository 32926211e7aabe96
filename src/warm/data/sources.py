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
        return _load_or_fail(name, lambda: datasets.load_dataset(name, split=split))
    builder = _builder_for(path)
    if builder is None:
        if path.exists():
            expected = ", ".join(sorted(FILE_BUILDERS))
            raise WarmError(f"{name}: unsupported file type (expected {expected}, optionally gzipped)")
        return _load_hub(name, split)
    if not path.is_file():
        raise WarmError(f"{name}: file not found")
    # A throwaway cache: local files are small enough to hold in memory, and a per-call cache cannot serve a stale
    # copy of a file rewritten in place, nor grow ~/.cache with every temporary file tests create.
    with tempfile.TemporaryDirectory(prefix="warm-datasets-") as cache, _quiet_datasets():
        kwargs: dict[str, Any] = {"data_files": str(path), "split": "train", "cache_dir": cache, "keep_in_memory": True}
        if builder == "csv":
            # CSV has no null: an empty cell is the empty string, and text such as "NA" or "None" stays text.
            kwargs["na_filter"] = False
        dataset = _load_or_fail(name, lambda: datasets.load_dataset(builder, **kwargs))
        if builder == "json":
            dataset = _unwrap_json_document(dataset)
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


def _unwrap_json_document(dataset):
    """A .json holding one object: {"data": [rows]} (datasets' `field=`) or {"col": [values]} (columns) -> rows."""
    from datasets import Dataset

    if len(dataset) != 1:
        return dataset
    row = dataset[0]
    values = list(row.values())
    if len(values) == 1 and isinstance(values[0], list) and values[0] and all(isinstance(v, dict) for v in values[0]):
        return Dataset.from_list(values[0])
    if values and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        if not any(isinstance(v[0], dict) for v in values if v):  # a single conversational row stays a row
            return Dataset.from_dict(row)
    return dataset


def _load_hub(name: str, split: str):
    import datasets
    from huggingface_hub import is_offline_mode

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; the user needs one line, not a trace
        why = "the Hugging Face hub is offline (HF_HUB_OFFLINE=1)" if is_offline_mode() else error_summary(exc)
        raise WarmError(f"{name}: not a local file and cannot be loaded as a hub dataset ({why})") from None


def _load_or_fail(name: str, load):
    try:
        return load()
    except (StopIteration, IndexError):  # datasets' json builder on an empty file
        raise WarmError(f"{name}: no rows") from None
    except Exception as exc:  # noqa: BLE001 - parse errors arrive wrapped in DatasetGenerationError
        raise WarmError(f"{name}: cannot read ({error_summary(exc)})") from None


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
