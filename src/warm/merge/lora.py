"""Exact weight averaging of LoRA members (PEFT adapters trained from one base, the WARM init).

Member i's effective weights are W + s_i B_i A_i on each adapted module (s_i = alpha_i / r_i, or alpha_i / sqrt(r_i)
with rsLoRA; PEFT's `get_delta_weight`) and its own copy H_i of the reward head (PEFT `modules_to_save`). Their
weighted average sum_i w_i (W + s_i B_i A_i) = W + sum_i w_i s_i B_i A_i, head sum_i w_i H_i, is written as either
  full:    a standard HF directory (the base's tensors with the averaged deltas added), like any merge; or
  adapter: ONE LoRA adapter of rank sum_i r_i whose factors concatenate the members' (A = rows of all A_i,
           B = columns of all w_i (s_i / s) B_i) with alpha chosen so that its scaling is s = s_0: then
           s B A = sum_i w_i s_i B_i A_i exactly. It is M times a member's adapter, not a full model, on disk.
Averaging the factors A and B separately instead would not be the average of the weights (B A is bilinear).

The streaming rules of warm.merge.merge apply: checks from headers first, then one output tensor at a time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open

from warm.models.contract_files import common_contract, stamp_copied_files
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.merge.checks import check_lineage, check_out, check_tensors, check_tokenizers
from warm.merge.output import check_finite, copy_files, merge_record, stream_merge, write_merge_files
from warm.merge.methods import accumulation_dtype, linear
from warm.merge.tensor_io import SINGLE_FILE, CheckpointReader
from warm.rundir import INIT_FILE, MEMBER_FILE

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # PeftModel -> LoraModel -> the transformers model, in saved key names
LORA_OUTPUTS = ("full", "adapter")
# Saved key suffixes of the LoRA factors -> (role, embedding?); the adapted tensor is MODULE.weight.
_FACTORS = {".lora_A.weight": ("A", False), ".lora_B.weight": ("B", False),
            ".lora_embedding_A": ("A", True), ".lora_embedding_B": ("B", True)}
Producer = Callable[[str], torch.Tensor]  # output tensor name -> the tensor (see warm.merge.output.stream_merge)


def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


class AdapterReader(CheckpointReader):
    """CheckpointReader over a PEFT adapter's single `adapter_model.safetensors` (the same lazy per-tensor API)."""

    def __init__(self, adapter_dir: str | os.PathLike):  # not super().__init__: that looks for model.safetensors
        self.path = Path(adapter_dir)
        weights = self.path / ADAPTER_WEIGHTS
        if not weights.is_file():
            pickled = self.path / "adapter_model.bin"
            if pickled.is_file():
                raise WarmError(f"{self.path}: only {pickled.name} found; save adapters with safe_serialization=True")
            raise WarmError(f"{self.path}: no {ADAPTER_WEIGHTS}")
        try:
            handle = safe_open(str(weights), framework="pt", device="cpu")
        except Exception as exc:
            raise WarmError(f"{weights}: cannot read safetensors file ({exc})") from None
        self.files = [ADAPTER_WEIGHTS]
        self._handles = {ADAPTER_WEIGHTS: handle}
        self._location = {key: ADAPTER_WEIGHTS for key in handle.keys()}


def lora_scaling(adapter_dir: Path) -> tuple[float, int, dict]:
    """(scaling s, rank r, config) of a LoRA adapter; refuses variants whose update is not s * B @ A."""
    path = adapter_dir / ADAPTER_CONFIG
    config = read_json(path)
    if config.get("peft_type") != "LORA":
        raise WarmError(f"{path}: peft_type {config.get('peft_type')!r}; only LoRA adapters can be merged")
    unsupported = {"use_dora": "DoRA", "rank_pattern": "rank_pattern", "alpha_pattern": "alpha_pattern",
                   "lora_bias": "lora_bias", "layer_replication": "layer_replication",
                   "trainable_token_indices": "trainable_token_indices", "target_parameters": "target_parameters"}
    for key, what in unsupported.items():
        if config.get(key):
            raise WarmError(f"{path}: {what} is not supported by the exact LoRA merge")
    if config.get("bias", "none") != "none":
        raise WarmError(f"{path}: bias={config['bias']!r} is not supported by the exact LoRA merge (use bias='none')")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    return (alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r), r, config


@dataclass
class AdapterLayout:
    """Which base tensor each adapter tensor changes: factor pairs (base name -> A, B keys) and head copies."""

    factors: dict[str, tuple[str, str, bool]]  # base tensor -> (A key, B key, is_embedding)
    replaced: dict[str, str]  # base tensor -> adapter key of its trained copy (modules_to_save)


def adapter_layout(names: list[str], where: Path) -> AdapterLayout:
    halves: dict[str, dict[str, str]] = {}
    embedding: dict[str, bool] = {}
    replaced: dict[str, str] = {}
    for key in names:
        if not key.startswith(PEFT_PREFIX):
            raise WarmError(f"{where / ADAPTER_WEIGHTS}: tensor {key} lacks PEFT's {PEFT_PREFIX!r} prefix")
        local = key[len(PEFT_PREFIX):]
        suffix = next((s for s in _FACTORS if local.endswith(s)), None)
        if suffix is None:
            if ".lora_" in local:
                raise WarmError(f"{where / ADAPTER_WEIGHTS}: tensor {key} is no LoRA factor warm can merge")
            replaced[local] = key
            continue
        role, is_embedding = _FACTORS[suffix]
        target = local[: -len(suffix)] + ".weight"
        halves.setdefault(target, {})[role] = key
        embedding[target] = is_embedding
    factors = {}
    for target, pair in sorted(halves.items()):
        if set(pair) != {"A", "B"}:
            raise WarmError(f"{where / ADAPTER_WEIGHTS}: {target} has lora_{next(iter(pair))} but no partner factor")
        factors[target] = (pair["A"], pair["B"], embedding[target])
    return AdapterLayout(factors, replaced)


def _delta_shape(reader: CheckpointReader, a_key: str, b_key: str, is_embedding: bool, fan_in_fan_out: bool) -> tuple:
    rows, cols = reader.shape(b_key)[0], reader.shape(a_key)[1]
    return (cols, rows) if is_embedding or fan_in_fan_out else (rows, cols)


def _delta(a: torch.Tensor, b: torch.Tensor, is_embedding: bool, fan_in_fan_out: bool,
           dtype: torch.dtype) -> torch.Tensor:
    """B @ A oriented like the base weight (PEFT: embeddings and fan_in_fan_out layers store it transposed)."""
    delta = b.to(dtype) @ a.to(dtype)
    return delta.T if is_embedding or fan_in_fan_out else delta


def resolve_base(members: list[Path], override: str | os.PathLike | None) -> Path:
    """The base weights the adapters were trained on: `override`, else what every member records (one base)."""
    if override is not None:
        base = Path(override)
    else:
        recorded = []
        for member in members:
            record = read_json(member / MEMBER_FILE) if (member / MEMBER_FILE).is_file() else {}
            path = (record.get("lora") or {}).get("base") or record.get("init") \
                or read_json(member / ADAPTER_CONFIG).get("base_model_name_or_path")
            if not path:
                raise WarmError(f"{member}: records no base model for its adapter; pass --lora-base DIR")
            recorded.append(Path(path))
        for member, path in zip(members[1:], recorded[1:]):
            if path.resolve() != recorded[0].resolve():
                raise WarmError(f"{member}: adapter base {path} differs from {recorded[0]} of {members[0]}; "
                                "LoRA members must share one base")
        base = recorded[0]
    if not base.is_dir():
        raise WarmError(f"{base}: LoRA base model directory not found; pass --lora-base DIR")
    return base


def _check_base_lineage(base: Path, members: list[Path], fingerprints: list[str | None]) -> None:
    """A LoRA delta only means something on the weights it was trained from: refuse a base of another lineage."""
    if not (base / INIT_FILE).is_file():
        return  # not a warm init: hashing a foreign base (maybe 140 GB) to compare is not worth it
    base_fp = read_json(base / INIT_FILE).get("fingerprint")
    for member, fp in zip(members, fingerprints):
        if fp is not None and base_fp is not None and fp != base_fp:
            raise WarmError(f"{member}: trained from init {fp[:12]}, but base {base} has fingerprint {base_fp[:12]}")


def merge_lora_members(
    members: list[Path],
    out: Path,
    weights: list[float],
    output: str = "full",
    base: str | os.PathLike | None = None,
    force: bool = False,
    allow_mixed_init: bool = False,
    max_shard_bytes: int | None = None,
    progress: bool = True,
    extra_info: dict | None = None,
) -> dict:
    """Merge LoRA member adapters (weights already normalised) into `out`; return the warm_merge.json payload."""
    if output not in LORA_OUTPUTS:
        raise WarmError(f"--lora-output {output!r}: expected one of {', '.join(LORA_OUTPUTS)}")
    for member in members:
        if not is_adapter_dir(member):
            raise WarmError(f"{member}: not a LoRA adapter (no {ADAPTER_CONFIG}) among adapter members")
    base_dir = resolve_base(members, base)
    check_out(out, [*members, base_dir], force)
    scalings, ranks, configs = zip(*(lora_scaling(m) for m in members))
    fan_in_fan_out = bool(configs[0].get("fan_in_fan_out"))
    if any(bool(c.get("fan_in_fan_out")) != fan_in_fan_out for c in configs):
        raise WarmError(f"{members[0] / ADAPTER_CONFIG}: members differ in fan_in_fan_out")
    readers: list[CheckpointReader] = []
    try:
        readers = [AdapterReader(m) for m in members]
        base_reader = CheckpointReader(base_dir)
        readers.append(base_reader)  # closed with the others
        adapters = readers[:-1]
        names = check_tensors(adapters)
        layout = adapter_layout(names, members[0])
        check_tokenizers(members)
        contract = common_contract(members)
        fingerprints, common = check_lineage(members, allow_mixed_init)
        _check_base_lineage(base_dir, members, fingerprints)
        _check_against_base(layout, adapters[0], base_reader, fan_in_fan_out)

        with atomic_directory(out, force=force) as tmp:
            if output == "full":
                produce = _full_weights(adapters, base_reader, layout, weights, scalings, fan_in_fan_out)
                stats = stream_merge(base_reader.names(), produce, tmp, max_shard_bytes, progress)
                copy_files(base_dir, tmp)  # config.json (the adapters have none)
            else:  # PEFT loads one adapter file: no sharding
                stats = stream_merge(names, _one_adapter(adapters, layout, weights, scalings), tmp, None, progress)
                os.replace(tmp / SINGLE_FILE, tmp / ADAPTER_WEIGHTS)
                stats["weight_files"] = [ADAPTER_WEIGHTS]
                rank = sum(ranks)
                write_json(tmp / ADAPTER_CONFIG, {  # scaling alpha' / r' = s_0, the scale B' was folded for
                    **configs[0], "r": rank, "lora_alpha": scalings[0] * rank, "use_rslora": False,
                    "base_model_name_or_path": str(base_dir.resolve()), "inference_mode": True,
                })
            copy_files(members[0], tmp)  # the members' tokenizer
            if contract is not None:
                stamp_copied_files(tmp, contract)
            lora_info = {"output": output, "base": str(base_dir.resolve()), "scalings": list(scalings),
                         "ranks": list(ranks)}
            if output == "adapter":
                lora_info.update(rank=sum(ranks), alpha=scalings[0] * sum(ranks))
            info = merge_record("linear", members, list(weights), fingerprints, common, stats,
                                {"lora": lora_info, **(extra_info or {})})
            write_merge_files(tmp, info, members)
    finally:
        for reader in readers:
            reader.close()
    return info


def _check_against_base(layout: AdapterLayout, adapter: CheckpointReader, base: CheckpointReader,
                        fan_in_fan_out: bool) -> None:
    """Every tensor an adapter changes exists in the base with the shape of the change (before any write)."""
    present = set(base.names())
    for target, (a_key, b_key, is_embedding) in layout.factors.items():
        if target not in present:
            raise WarmError(f"{base.path}: lacks tensor {target} that {adapter.path} adapts ({a_key})")
        shape = _delta_shape(adapter, a_key, b_key, is_embedding, fan_in_fan_out)
        if shape != base.shape(target):
            raise WarmError(f"{target}: LoRA update of shape {list(shape)} from {adapter.path} but "
                            f"{list(base.shape(target))} in {base.path}")
    for target, key in layout.replaced.items():
        if target not in present:
            raise WarmError(f"{base.path}: lacks tensor {target} saved by {adapter.path} ({key})")
        if adapter.shape(key) != base.shape(target):
            raise WarmError(f"{target}: shape {list(adapter.shape(key))} in {adapter.path} but "
                            f"{list(base.shape(target))} in {base.path}")


def _average(adapters: list[CheckpointReader], weights: list[float]) -> Producer:
    """The weighted average of the members' copies of one adapter tensor (the head: modules_to_save)."""

    def produce(key: str) -> torch.Tensor:
        tensors = [reader.get(key) for reader in adapters]
        check_finite(adapters, tensors, key)
        return linear(tensors, list(weights))

    return produce


def _full_weights(adapters, base: CheckpointReader, layout: AdapterLayout, weights: list[float],
                  scalings: tuple[float, ...], fan_in_fan_out: bool) -> Producer:
    """Output tensor NAME of the full form: W + sum_i w_i s_i B_i A_i, the averaged head, or W unchanged."""
    average = _average(adapters, weights)

    def produce(name: str) -> torch.Tensor:
        if name in layout.replaced:  # the head, in the base's dtype like every other tensor
            return average(layout.replaced[name]).to(base.dtype(name))
        weight = base.get(name)
        check_finite([base], [weight], name)
        if name not in layout.factors:
            return weight
        a_key, b_key, is_embedding = layout.factors[name]
        acc_dtype = accumulation_dtype(weight.dtype)  # as warm.merge.methods.linear: round once, at the end
        total = weight.to(acc_dtype)
        for reader, w, s in zip(adapters, weights, scalings):
            if w:
                a, b = reader.get(a_key), reader.get(b_key)
                check_finite([reader, reader], [a, b], f"{a_key} / {b_key}")
                total.add_(_delta(a, b, is_embedding, fan_in_fan_out, acc_dtype), alpha=w * s)
        return total.to(weight.dtype)

    return produce


def _one_adapter(adapters, layout: AdapterLayout, weights: list[float], scalings: tuple[float, ...]) -> Producer:
    """Tensor KEY of the adapter form: A factors stacked along the rank (rows), B factors along the rank (columns)
    with member i's block scaled by w_i s_i / s_0, so that s_0 B' A' = sum_i w_i s_i B_i A_i; heads averaged."""
    average = _average(adapters, weights)
    concat_dim = {}
    for a_key, b_key, _ in layout.factors.values():
        concat_dim[a_key], concat_dim[b_key] = 0, 1

    def produce(key: str) -> torch.Tensor:
        if key not in concat_dim:
            return average(key)
        tensors = [reader.get(key) for reader in adapters]
        check_finite(adapters, tensors, key)
        if concat_dim[key] == 1:
            dtype = tensors[0].dtype
            tensors = [(t.to(accumulation_dtype(dtype)) * (w * s / scalings[0])).to(dtype)
                       for t, w, s in zip(tensors, weights, scalings)]
        return torch.cat(tensors, dim=concat_dim[key])

    return produce
