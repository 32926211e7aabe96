"""mergekit interop: the mergekit config that reproduces a warm merge (`warm merge --emit-mergekit-yaml FILE`).

WARM's weighted average is mergekit's `linear` method (arcee-ai/mergekit, mergekit/merge_methods/linear.py:
sum_i w_i t_i, divided by sum_i w_i when `normalize` is true, its default). The config follows mergekit's
MergeConfiguration (mergekit/config.py): `models` (each `model` with `parameters: {weight}`), `merge_method`,
top-level `parameters`, and `dtype`. LoRA members are written as mergekit's `BASE+ADAPTER` model references
(mergekit/common.py ModelReference), which mergekit merges into the base before averaging: the same model as
warm's full LoRA merge. Results agree up to rounding: mergekit sums in `dtype`, warm accumulates in float32/64.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from warm.errors import WarmError
from warm.fileio import write_text
from warm.merge.tensor_io import CheckpointReader, dtype_name


def _float_dtypes(model_dir: str) -> set[str]:
    with CheckpointReader(model_dir) as reader:
        return {dtype_name(reader.dtype(n)) for n in reader.names() if reader.dtype(n).is_floating_point}


def mergekit_config(info: dict) -> dict:
    """The mergekit `linear` config equivalent to the merge described by `info` (a warm_merge.json payload)."""
    lora = info.get("lora")
    if info.get("method") != "linear":
        raise WarmError(f"merge method {info.get('method')!r} has no mergekit equivalent written by warm")
    dtypes = _float_dtypes(lora["base"]) if lora else set((info.get("dtype") or "").split(",")) - {""}
    # mergekit's `dtype` is the one tensors are loaded and merged in: the members' (the base's, for LoRA).
    dtype = dtypes.pop() if len(dtypes) == 1 else "float32"
    models = [
        {"model": f"{lora['base']}+{member}" if lora else member, "parameters": {"weight": float(weight)}}
        for member, weight in zip(info["members"], info["weights"])
    ]
    return {"models": models, "merge_method": "linear", "parameters": {"normalize": True}, "dtype": dtype}


def write_mergekit_yaml(path: str | os.PathLike, info: dict, out_dir: str | os.PathLike) -> Path:
    """Write the mergekit config for `info` to `path` (atomically), with a header saying how to run it."""
    path = Path(path)
    header = (
        f"# mergekit equivalent of the warm merge in {out_dir} (weights normalised to sum to 1).\n"
        f"# Run: mergekit-yaml {path.name} OUTPUT_DIR\n"
    )
    text = header + yaml.safe_dump(mergekit_config(info), sort_keys=False, default_flow_style=False)
    return write_text(path, text)
