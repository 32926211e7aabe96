"""Streaming safetensors IO: read one tensor at a time from a Hugging Face model directory, write shards.

Why streaming: WARM averages M reward models (Ramé et al. 2024); loading M full state dicts needs M models of
RAM. Like mergekit's `io/` (a lazy per-tensor loader and a `TensorWriter` that flushes shards as they fill), the
reader here opens each safetensors file lazily (`safe_open` validates it and `get_slice` reads only headers),
so shapes and dtypes of every member are checked before any weight is read.

Weights are read with plain read(2) calls into tensors the caller owns, not through a memory map: touched pages
of a mapped file stay in the process (its resident set) until the map is closed, so streaming M memory-mapped
members grows to M models of RSS although only one tensor per member is in use (mergekit's lazy loader shows it:
benchmarks/merge_bench.py). `get_rows` reads a block of rows, so a merge can go through a large tensor (an
embedding) in pieces. Given the output layout up front, the writer streams each tensor to its shard file as it
comes (the header first: every offset is known), so the merge holds no output shard either.

The layout written is the one `transformers.save_pretrained` writes, so `from_pretrained` loads it unchanged:
a single `model.safetensors`, or `model-0000i-of-0000N.safetensors` shards plus `model.safetensors.index.json`.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open

from warm.errors import WarmError
from warm.fileio import write_json

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")

# safetensors header dtype codes -> torch dtypes (the float8 types only exist in recent torch builds).
_DTYPES: dict[str, torch.dtype] = {
    code: getattr(torch, name)
    for code, name in {
        "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
        "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
        "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
        "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    }.items()
    if hasattr(torch, name)
}


_CODES: dict[torch.dtype, str] = {dtype: code for code, dtype in _DTYPES.items()}


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.float32` -> `float32`, the spelling used in messages and warm_*.json files."""
    return str(dtype).replace("torch.", "")


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


class CheckpointReader:
    """Lazy, per-tensor view of the weights in one HF model directory (single file or sharded)."""

    def __init__(self, model_dir: str | os.PathLike):
        self.path = Path(model_dir)
        if not self.path.is_dir():
            raise WarmError(f"{self.path}: not a directory")
        self._location: dict[str, str] = {}  # tensor name -> file name inside the directory
        single, index = self.path / SINGLE_FILE, self.path / INDEX_FILE
        if single.is_file():  # transformers also prefers the single file when both exist
            self.files = [SINGLE_FILE]
        elif index.is_file():
            self.files = self._read_index(index)
        else:
            pickled = [name for name in _PICKLE_FILES if (self.path / name).is_file()]
            if pickled:
                raise WarmError(
                    f"{self.path}: only {pickled[0]} found; warm.merge needs safetensors weights "
                    "(convert with model.save_pretrained(dir, safe_serialization=True))"
                )
            raise WarmError(f"{self.path}: no {SINGLE_FILE} or {INDEX_FILE}; not a Hugging Face model directory")
        self._handles = {}
        for file in self.files:
            try:
                self._handles[file] = safe_open(str(self.path / file), framework="pt", device="cpu")
            except Exception as exc:  # safetensors raises its own SafetensorError on corrupt headers
                raise WarmError(f"{self.path / file}: cannot read safetensors file ({exc})") from None
        if self.files == [SINGLE_FILE]:
            self._location = {key: SINGLE_FILE for key in self._handles[SINGLE_FILE].keys()}
        else:
            stored = {file: set(handle.keys()) for file, handle in self._handles.items()}
            for key, file in sorted(self._location.items()):
                if key not in stored[file]:
                    raise WarmError(f"{self.path / file}: lacks tensor {key} that {INDEX_FILE} says it holds")

    def _read_index(self, index: Path) -> list[str]:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise WarmError(f"{index}: not a safetensors index (no weight_map)") from None
        for file in sorted(set(weight_map.values())):
            if not (self.path / file).is_file():
                raise WarmError(f"{self.path / file}: shard named in {INDEX_FILE} is missing")
        self._location = dict(weight_map)
        return sorted(set(weight_map.values()))

    def names(self) -> list[str]:
        return sorted(self._location)

    def _slice(self, name: str):
        try:
            return self._handles[self._location[name]].get_slice(name)
        except KeyError:
            raise WarmError(f"{self.path}: no tensor named {name}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._slice(name).get_shape())

    def dtype(self, name: str) -> torch.dtype:
        code = self._slice(name).get_dtype()
        if code not in _DTYPES:
            raise WarmError(f"{self.path}: tensor {name} has dtype {code}, which this torch build cannot read")
        return _DTYPES[code]

    def nbytes(self, name: str) -> int:
        numel = 1
        for size in self.shape(name):
            numel *= size
        return numel * _itemsize(self.dtype(name))

    def total_bytes(self) -> int:
        return sum(self.nbytes(name) for name in self._location)

    def get(self, name: str) -> torch.Tensor:
        """Read ONE tensor into memory (this and `get_rows` are the only methods that touch weight data)."""
        self._slice(name)  # a WarmError for unknown names
        if sys.byteorder != "little":  # safetensors stores little-endian bytes; let the library swap them
            return self._handles[self._location[name]].get_tensor(name)
        return self._read(name, 0, None)

    def get_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows start:stop (along the first dimension, clipped to its size) of tensor `name`: one contiguous read."""
        shape = self.shape(name)
        if not shape:
            raise WarmError(f"{self.path}: tensor {name} is a scalar; it has no rows")
        if sys.byteorder != "little":
            return self._handles[self._location[name]].get_slice(name)[start:min(stop, shape[0])]
        return self._read(name, start, stop)

    def _read(self, name: str, start: int, stop: int | None) -> torch.Tensor:
        shape, dtype = self.shape(name), self.dtype(name)
        file = self._location[name]
        begin, end = self._data_range(file, name)
        if stop is not None:  # a block of rows: rows are contiguous in safetensors' row-major layout
            start, stop = max(0, min(start, shape[0])), max(0, min(stop, shape[0]))
            stop = max(start, stop)
            row_bytes = (end - begin) // shape[0] if shape[0] else 0
            begin, end = begin + start * row_bytes, begin + stop * row_bytes
            shape = (stop - start, *shape[1:])
        buffer = torch.empty(end - begin, dtype=torch.uint8)
        if end > begin:  # unbuffered: one read(2) straight into the tensor's memory
            view, done = memoryview(buffer.numpy()), 0
            with open(self.path / file, "rb", buffering=0) as handle:
                handle.seek(begin)
                while done < len(view):
                    count = handle.readinto(view[done:])
                    if not count:
                        raise WarmError(f"{self.path / file}: ends inside tensor {name} (truncated file)")
                    done += count
        return buffer.view(dtype).reshape(shape)

    def _data_range(self, file: str, name: str) -> tuple[int, int]:
        """Absolute byte range of tensor `name` in `file`, from the file's header (parsed once per file)."""
        headers = vars(self).setdefault("_headers", {})  # vars(): subclasses (LoRA adapters) skip __init__
        if file not in headers:
            with open(self.path / file, "rb") as handle:
                (size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(size))
            headers[file] = {key: (8 + size + entry["data_offsets"][0], 8 + size + entry["data_offsets"][1])
                             for key, entry in header.items() if key != "__metadata__"}
        return headers[file][name]

    def close(self) -> None:
        # safe_open handles release their memory map when dropped; reads open and close their own descriptor.
        self._handles.clear()
        vars(self).pop("_headers", None)

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CheckpointWriter:
    """Write tensors one by one into safetensors shards of at most `max_shard_bytes` (None: one file).

    Without a `layout`, follows mergekit's TensorWriter: tensors accumulate in the current shard until the next one
    would overflow it, then the shard is saved and dropped, so memory holds at most one shard (with no shard size:
    the whole model, until `finalize()`). With `layout`, the (name, shape, dtype) of every tensor in the order they
    will be added, the shards and every offset are known up front: each shard file gets its header first and each
    tensor is written to it as it is added, so the writer holds no tensor at all; a tensor that does not match the
    layout is refused. Either way shards are written under provisional names and renamed to transformers'
    `model-0000i-of-0000N.safetensors` once N is known in `finalize()`, and a tensor larger than `max_shard_bytes`
    gets a shard of its own, as in transformers.
    """

    def __init__(self, out_dir: str | os.PathLike, max_shard_bytes: int | None = None,
                 layout: list[tuple[str, tuple[int, ...], torch.dtype]] | None = None):
        if max_shard_bytes is not None and max_shard_bytes <= 0:
            raise WarmError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
        self.path = Path(out_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        self.max_shard_bytes = max_shard_bytes
        self._shard: dict[str, torch.Tensor] = {}
        self._shard_bytes = 0
        self._written: list[tuple[str, list[str]]] = []  # (provisional file name, tensor names)
        self.total_size = 0
        self.total_parameters = 0
        self._finalized = False
        self._layout: list[tuple[int, str, tuple[int, ...], torch.dtype]] | None = None  # (shard, name, shape, dtype)
        self._next = 0  # index into _layout of the next tensor to add
        self._file = None  # the shard file being streamed
        if layout is not None and sys.byteorder == "little":  # streaming writes the tensors' bytes as they are
            self._layout = self._plan(layout)

    def _plan(self, layout) -> list[tuple[int, str, tuple[int, ...], torch.dtype]]:
        """Assign each tensor of the layout to a shard by the same rule `add` follows without a layout."""
        planned, seen, shard, shard_bytes = [], set(), 0, 0
        for name, shape, dtype in layout:
            if name in seen:
                raise WarmError(f"tensor {name} written twice")
            seen.add(name)
            size = math.prod(shape) * _itemsize(dtype)
            if self.max_shard_bytes is not None and shard_bytes and shard_bytes + size > self.max_shard_bytes:
                shard, shard_bytes = shard + 1, 0
            planned.append((shard, name, tuple(shape), dtype))
            shard_bytes += size
        return planned

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if self._finalized:
            raise RuntimeError("CheckpointWriter.add after finalize")
        if self._layout is not None:
            self._stream(name, tensor)
            return
        if name in self._shard or any(name in names for _, names in self._written):
            raise WarmError(f"tensor {name} written twice")
        size = tensor.numel() * tensor.element_size()
        if self.max_shard_bytes is not None and self._shard and self._shard_bytes + size > self.max_shard_bytes:
            self._flush()
        # save_file needs contiguous, non-shared storage; a detached contiguous tensor is that.
        self._shard[name] = tensor.detach().contiguous()
        self._shard_bytes += size
        self.total_size += size
        self.total_parameters += tensor.numel()

    def _stream(self, name: str, tensor: torch.Tensor) -> None:
        if self._next >= len(self._layout):
            raise WarmError(f"tensor {name}: not in the output layout (all {len(self._layout)} tensors written)")
        shard, expected, shape, dtype = self._layout[self._next]
        if (name, tuple(tensor.shape), tensor.dtype) != (expected, shape, dtype):
            raise WarmError(
                f"tensor {name} {list(tensor.shape)} {dtype_name(tensor.dtype)} does not match the output layout, "
                f"which expects {expected} {list(shape)} {dtype_name(dtype)} next"
            )
        if self._file is None:  # the shard's first tensor: open it and write its header
            entries = [entry for entry in self._layout if entry[0] == shard]
            file = f".shard-{shard + 1:05d}.safetensors.partial"
            self._file = open(self.path / file, "wb")
            self._file.write(_header([(n, s, d) for _, n, s, d in entries]))
            self._written.append((file, [n for _, n, _, _ in entries]))
        flat = tensor.detach().contiguous().reshape(-1)
        if flat.numel():
            self._file.write(memoryview(flat.view(torch.uint8).numpy()))
        self.total_size += flat.numel() * flat.element_size()
        self.total_parameters += flat.numel()
        self._next += 1
        if self._next == len(self._layout) or self._layout[self._next][0] != shard:
            self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _flush(self) -> None:
        if not self._shard:
            return
        file = f".shard-{len(self._written) + 1:05d}.safetensors.partial"
        safetensors.torch.save_file(self._shard, str(self.path / file), metadata={"format": "pt"})
        self._written.append((file, list(self._shard)))
        self._shard, self._shard_bytes = {}, 0

    def finalize(self) -> list[str]:
        """Write the last shard, give shards their final names and write the index; return the file names."""
        if self._finalized:
            raise RuntimeError("CheckpointWriter.finalize called twice")
        self._flush()
        self._finalized = True
        if self._layout is not None and self._next < len(self._layout):
            self._close_file()
            missing = self._layout[self._next][1]
            left = len(self._layout) - self._next
            raise WarmError(f"{left} tensors of the output layout not written (first: {missing})")
        if not self._written:
            raise WarmError("no tensors to write")
        count = len(self._written)
        if count == 1:
            os.replace(self.path / self._written[0][0], self.path / SINGLE_FILE)
            return [SINGLE_FILE]
        weight_map: dict[str, str] = {}
        files = []
        for i, (file, names) in enumerate(self._written, start=1):
            final = f"model-{i:05d}-of-{count:05d}.safetensors"
            os.replace(self.path / file, self.path / final)
            files.append(final)
            weight_map.update({name: final for name in names})
        index = {
            "metadata": {"total_parameters": self.total_parameters, "total_size": self.total_size},
            "weight_map": dict(sorted(weight_map.items())),
        }
        write_json(self.path / INDEX_FILE, index)
        return files + [INDEX_FILE]

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None and not self._finalized:
            self.finalize()
        self._close_file()


def _header(entries: list[tuple[str, tuple[int, ...], torch.dtype]]) -> bytes:
    """A safetensors header for tensors stored back to back in this order: the 8-byte little-endian length, then
    JSON (names, dtypes, shapes, data offsets), padded with spaces to a multiple of 8 as safetensors pads it."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, dtype in entries:
        size = math.prod(shape) * _itemsize(dtype)
        header[name] = {"dtype": _CODES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw
