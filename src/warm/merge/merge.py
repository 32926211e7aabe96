"""The WARM merge: average M reward models fine-tuned from one shared init into one HF model directory.

Flow: check everything that can be checked from headers and small files (weights, names, shapes, dtypes,
configs, tokenizers, lineage) before writing anything; then stream tensor by tensor (read one tensor from each
member, combine with the chosen method, hand it to the shard writer, drop it), so memory holds one tensor per
member plus one output shard, never M models (model soups keeps a running sum for the same reason; mergekit
streams the same way). The output goes through `atomic_directory`: a failure mid-stream (a NaN found in member 3's
last layer) leaves no output and no temporary directory behind. LoRA members (PEFT adapters) take the same road
through warm.merge.lora, which reuses the checks, the stream and the metadata written here.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

import warm
from warm.data.contract import InputContract
from warm.models.contract_files import CONTRACT_FILE, common_contract, stamp_copied_files
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.merge.card import render_model_card
from warm.merge.checks import (
    _member_record, check_lineage, check_out, check_tensors, check_tokenizers, normalise_weights,
    _check_configs,
)
from warm.merge.methods import MERGE_METHODS
from warm.merge.tensor_io import CheckpointReader, CheckpointWriter, dtype_name
from warm.rundir import MERGE_FILE, timestamp

# Methods that combine members element by element: a tensor larger than BLOCK_BYTES is merged a block of rows at
# a time, which gives the same bits while memory holds one block per member, not one tensor (a 128k x 4096 float32
# embedding is 2 GB per member, linear's float64 accumulator twice that). Small blocks are also faster: their
# float64 temporaries stay in cache and, with _blockwise_runtime, in malloc's heap; on the benchmark machine
# 1 MiB blocks merged 6 x SmolLM2-135M ~2.5x faster than 8 MiB ones (docs/results/merge.md).
ELEMENTWISE_METHODS = frozenset({"linear"})
BLOCK_BYTES = 2**20  # per member and block

# Non-weight files copied from the first member: what from_pretrained and AutoTokenizer need, nothing from
# training (training_args.bin, optimizer states, warm_member.json describe one member, not the merge).
COPIED_FILES = (
    "config.json", "generation_config.json", "tokenizer*.json", "vocab*", "merges.txt", "added_tokens.json",
    "special_tokens_map.json", "*.model", "*.tiktoken", "chat_template.jinja", "chat_template.json",
)


def merge_models(
    member_dirs: list[str | Path],
    out: str | Path,
    weights: list[float] | None = None,
    method: str = "linear",
    force: bool = False,
    allow_mixed_init: bool = False,
    max_shard_bytes: int | None = None,
    progress: bool = True,
    lora_output: str = "full",
    lora_base: str | Path | None = None,
    extra_info: dict | None = None,
) -> dict:
    """Average `member_dirs` (HF reward-model dirs with safetensors weights) into the HF dir `out`.

    `weights` default to uniform (WARM's choice) and are normalised to sum to 1. Lineage: each member names its
    init in warm_member.json (`init_fingerprint`) or is the init itself (warm_init.json `fingerprint`). Weight
    averaging is only meaningful between fine-tunings of one init (linear mode connectivity), so members whose
    known fingerprints differ are refused unless `allow_mixed_init` (then a warning); members without a
    fingerprint only warn, since lineage cannot be checked for checkpoints made outside warm.
    Members that are PEFT LoRA adapters (adapter_config.json) are merged exactly by warm.merge.lora, into full
    weights or, with `lora_output="adapter"`, into one adapter; `lora_base` overrides the base they record.
    `extra_info` is added to warm_merge.json (soups record their selection there).
    Returns the warm_merge.json payload. Every refusal is a WarmError naming the file or tensor at fault.
    """
    if not member_dirs:
        raise WarmError("merge needs at least one member directory")
    if method not in MERGE_METHODS:
        raise WarmError(f"unknown merge method {method!r} (choose from {', '.join(sorted(MERGE_METHODS))})")
    members = [Path(d) for d in member_dirs]
    norm_weights = normalise_weights(weights, len(members))
    out = Path(out)
    check_out(out, members, force)
    from warm.merge import lora  # imports this module: imported here, not at the top

    if any(lora.is_adapter_dir(m) for m in members):
        if method != "linear":
            raise WarmError(f"LoRA members are merged with the linear method only, not {method!r}")
        return lora.merge_lora_members(members, out, norm_weights, output=lora_output, base=lora_base, force=force,
                                       allow_mixed_init=allow_mixed_init, max_shard_bytes=max_shard_bytes,
                                       progress=progress, extra_info=extra_info)
    if lora_output != "full":
        raise WarmError(f"{members[0]}: not a LoRA adapter; --lora-output {lora_output} applies to adapter "
                        "members only")
    combine = MERGE_METHODS[method]
    readers: list[CheckpointReader] = []
    try:
        readers = [CheckpointReader(d) for d in members]
        _check_configs(members)  # first: a different architecture explains any tensor mismatch that follows
        names = check_tensors(readers)
        check_tokenizers(members)
        contract = common_contract(members)
        fingerprints, common = check_lineage(members, allow_mixed_init)

        def merge_part(name: str, tensors: list[torch.Tensor]) -> torch.Tensor:
            check_finite(readers, tensors, name)
            try:
                return combine(tensors, norm_weights)
            except WarmError as exc:
                raise WarmError(f"{name}: {exc}") from None

        def produce(name: str) -> torch.Tensor:
            shape, size = readers[0].shape(name), readers[0].nbytes(name)
            if method not in ELEMENTWISE_METHODS or not shape or size <= BLOCK_BYTES:
                return merge_part(name, [reader.get(name) for reader in readers])
            merged = torch.empty(shape, dtype=readers[0].dtype(name))
            rows = max(1, BLOCK_BYTES * shape[0] // size)
            for start in range(0, shape[0], rows):
                merged[start:start + rows] = merge_part(name, [r.get_rows(name, start, start + rows) for r in readers])
            return merged

        # The output's names, shapes and dtypes are the members' (methods keep the dtype), so the writer can stream.
        layout = [(name, readers[0].shape(name), readers[0].dtype(name)) for name in names]
        with atomic_directory(out, force=force) as tmp, _blockwise_runtime():
            stats = stream_merge(names, produce, tmp, max_shard_bytes, progress, layout=layout)
            copy_files(members[0], tmp)
            if contract is not None:
                stamp_copied_files(tmp, contract)
            info = merge_record(method, members, norm_weights, fingerprints, common, stats, extra_info)
            write_merge_files(tmp, info, members)
    finally:
        for reader in readers:
            reader.close()
    return info


@contextlib.contextmanager
def _blockwise_runtime():
    """One torch thread, and a malloc that keeps freed blocks for reuse, while a merge streams small blocks.

    A blockwise merge is thousands of small elementwise ops on memory-bound data. Two OpenMP threads gain little
    there and lose badly on shared cores, where one thread spin-waits at every op for its descheduled peer (M = 2
    took 25 s instead of 3.5 s on the benchmark's 2 busy cores). glibc hands freed memory above M_TRIM_THRESHOLD
    back to the OS, so each block's temporaries were page-faulted in afresh (10^6 faults, two thirds of the
    remaining time); thresholds at the ceiling glibc's own dynamic rule reaches (32 MiB mmap, 64 MiB trim) keep
    them. The thread count is restored afterwards; the thresholds stay (any 32 MiB free in a torch process leads
    glibc to them anyway) and malloc_trim returns what is free. Other C libraries: threads only.
    """
    threads = torch.get_num_threads()
    libc = _glibc()
    torch.set_num_threads(1)
    if libc is not None:
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 * 2**20)  # M_TRIM_THRESHOLD
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if libc is not None:
            libc.malloc_trim(0)


def _glibc():
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def merge_record(method: str, members: list[Path], weights: list[float], fingerprints: list[str | None],
                 common: str | None, stats: dict, extra_info: dict | None = None) -> dict:
    """The warm_merge.json payload (the same fields for full and LoRA merges, LoRA adding its own section)."""
    return {
        "method": method,
        "members": [str(m.resolve()) for m in members],
        "weights": weights,
        "init_fingerprint": common,
        "member_fingerprints": fingerprints,
        **stats,
        **(extra_info or {}),
        "warm_version": warm.__version__,
        "created": timestamp(),
    }


def write_merge_files(out_dir: Path, info: dict, members: list[Path]) -> None:
    """warm_merge.json and the model card, with each member's metrics from its warm_member.json."""
    write_json(out_dir / MERGE_FILE, info)
    metrics = [_member_record(m).get("metrics") for m in members]
    metrics = [m if isinstance(m, dict) else None for m in metrics]
    contract_file = out_dir / CONTRACT_FILE
    contract = InputContract.from_json(read_json(contract_file), str(contract_file)) if contract_file.is_file() else None
    (out_dir / "README.md").write_text(render_model_card(info, metrics, contract), encoding="utf-8")


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def stream_merge(names: list[str], produce: Callable[[str], torch.Tensor], out_dir: Path,
                 max_shard_bytes: int | None, progress: bool, layout: list | None = None) -> dict:
    """Write `produce(name)` for each name, tensor by tensor, into safetensors shards; return size statistics.

    `produce` reads what it needs for one output tensor and returns it, so nothing outlives one iteration:
    memory holds one tensor per member plus one output shard, whatever the number of members; given the output
    `layout` (name, shape, dtype of each tensor, in `names` order), no output shard either (CheckpointWriter).
    """
    writer = CheckpointWriter(out_dir, max_shard_bytes=max_shard_bytes, layout=layout)
    done, float_dtypes = 0, set()
    with tqdm(names, desc="merging", unit="tensor", disable=not progress) as bar:
        for name in bar:
            merged = produce(name)
            if merged.is_floating_point():
                float_dtypes.add(dtype_name(merged.dtype))
            done += merged.numel() * merged.element_size()
            writer.add(name, merged)
            del merged
            bar.set_postfix_str(_human_bytes(done), refresh=False)
    files = writer.finalize()
    return {
        "n_tensors": len(names),
        "total_bytes": writer.total_size,
        "dtype": ",".join(sorted(float_dtypes)) or None,
        "weight_files": files,
    }


def check_finite(readers: list[CheckpointReader], tensors: list, name: str) -> None:
    """NaN/Inf in a member is refused here, before its tensor reaches the writer (naming member and tensor)."""
    # A function of its own so that no loop variable keeps a member's tensor alive into the next iteration.
    for reader, tensor in zip(readers, tensors):
        if not tensor.is_floating_point():
            continue
        # A finite sum proves every element finite (NaN and Inf propagate through addition) in one cheap pass;
        # isfinite().all() is ~10x slower (a bool tensor, then a reduction). Only a sum that is not finite (NaN,
        # Inf, or an overflow of finite values) is looked at element by element.
        if tensor.dtype in _SUM_DTYPES and bool(tensor.sum(dtype=_SUM_DTYPES[tensor.dtype]).isfinite()):
            continue
        if not bool(tensor.isfinite().all()):
            kind = "NaN" if bool(tensor.isnan().any()) else "Inf"
            raise WarmError(f"{reader.path}: tensor {name} contains {kind}")


_SUM_DTYPES = {torch.float64: torch.float64, torch.float32: torch.float32, torch.bfloat16: torch.float32,
               torch.float16: torch.float32}


def copy_files(source: Path, dest: Path) -> None:
    """Copy the COPIED_FILES of `source` (config, tokenizer) into `dest`."""
    for path in sorted(source.iterdir()):
        if path.is_file() and any(fnmatch(path.name, pattern) for pattern in COPIED_FILES):
            shutil.copy2(path, dest / path.name)
