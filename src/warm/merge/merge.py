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
from pathlib import Path

import torch

from warm.models.contract_files import common_contract, stamp_copied_files
from warm.errors import WarmError
from warm.fileio import atomic_directory
from warm.merge.checks import (
    check_lineage, check_out, check_tensors, check_tokenizers, normalise_weights,
    _check_configs,
)
from warm.merge.methods import MERGE_METHODS
from warm.merge.output import check_finite, copy_files, merge_record, stream_merge, write_merge_files
from warm.merge.tensor_io import CheckpointReader

# Methods that combine members element by element: a tensor larger than BLOCK_BYTES is merged a block of rows at
# a time, which gives the same bits while memory holds one block per member, not one tensor (a 128k x 4096 float32
# embedding is 2 GB per member, linear's float64 accumulator twice that). Small blocks are also faster: their
# float64 temporaries stay in cache and, with _blockwise_runtime, in malloc's heap; on the benchmark machine
# 1 MiB blocks merged 6 x SmolLM2-135M ~2.5x faster than 8 MiB ones (docs/results/merge.md).
ELEMENTWISE_METHODS = frozenset({"linear"})
BLOCK_BYTES = 2**20  # per member and block

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
    tune_process: bool = False,
) -> dict:
    """Average `member_dirs` (HF reward-model dirs with safetensors weights) into the HF dir `out`.

    `weights` default to uniform (WARM's choice) and are normalised to sum to 1. Lineage: each member names its
    init in warm_member.json (`init_fingerprint`) or is the init itself (warm_init.json `fingerprint`). Weight
    averaging is only meaningful between fine-tunings of one init (linear mode connectivity), so members whose
    known fingerprints differ are refused unless `allow_mixed_init` (then a warning); members without a
    fingerprint only warn, since lineage cannot be checked for checkpoints made outside warm.
    Members that are PEFT LoRA adapters (adapter_config.json) are merged exactly by warm.merge.lora, into full
    weights or, with `lora_output="adapter"`, into one adapter; `lora_base` overrides the base they record.
    `extra_info` is added to warm_merge.json (soups record their selection there). `tune_process` lets the merge
    set malloc thresholds for the rest of the process (faster blockwise streaming; see _blockwise_runtime).
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
    from warm.merge import lora  # LoRA members take their own road (PEFT is imported only for them)

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
        with atomic_directory(out, force=force) as tmp, _blockwise_runtime(tune_process):
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
def _blockwise_runtime(tune_malloc: bool):
    """One torch thread while a merge streams small blocks, and (`tune_malloc`) a malloc that keeps freed blocks.

    A blockwise merge is thousands of small elementwise ops on memory-bound data. Two OpenMP threads gain little
    there and lose badly on shared cores, where one thread spin-waits at every op for its descheduled peer (M = 2
    took 25 s instead of 3.5 s on the benchmark's 2 busy cores). glibc hands freed memory above M_TRIM_THRESHOLD
    back to the OS, so each block's temporaries were page-faulted in afresh (10^6 faults, two thirds of the
    remaining time); thresholds at the ceiling glibc's own dynamic rule reaches (32 MiB mmap, 64 MiB trim) keep
    them. The thread count is restored afterwards. The thresholds cannot be read back, so they change the whole
    process for good: only `warm merge`'s own process (the CLI) asks for them; a library caller that wants the
    speed passes `tune_process=True` to merge_models. Other C libraries: threads only.
    """
    threads = torch.get_num_threads()
    libc = _glibc() if tune_malloc else None
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
