"""Writing a merged directory: the tensors streamed into safetensors shards, the files copied from a member, and
the merge's own record (warm_merge.json and the model card). Shared by full merges (warm.merge.merge) and LoRA
merges (warm.merge.lora), which produce their tensors differently but write them the same way.
"""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

import warm
from warm.errors import WarmError
from warm.fileio import read_json, write_json
from warm.merge.card import render_model_card
from warm.merge.checks import _member_record
from warm.merge.tensor_io import CheckpointReader, CheckpointWriter, dtype_name
from warm.rundir import CONTRACT_FILE, MERGE_FILE, timestamp
from warm.data.contract import InputContract

# Non-weight files copied from the first member: what from_pretrained and AutoTokenizer need, nothing from
# training (training_args.bin, optimizer states, warm_member.json describe one member, not the merge).
COPIED_FILES = (
    "config.json", "generation_config.json", "tokenizer*.json", "vocab*", "merges.txt", "added_tokens.json",
    "special_tokens_map.json", "*.model", "*.tiktoken", "chat_template.jinja", "chat_template.json",
)


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
