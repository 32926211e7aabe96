"""Reward-model directories: saving one with its input contract, its weights' fingerprint (the lineage id members
carry), the init fingerprint it descends from, and where its reward head is. The shared init itself is built by
warm.train.init."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from warm.data.contract import InputContract
from warm.errors import WarmError
from warm.fileio import read_json
from warm.models.contract_files import apply_to_save, write_contract
from warm.rundir import INIT_FILE



def weights_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the directory's safetensors files (sorted by name): the lineage id members carry."""
    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise WarmError(f"{model_dir}: no .safetensors weights to fingerprint")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def init_fingerprint(model_dir: str | Path) -> str:
    """The fingerprint recorded by `warm init` (falls back to hashing the weights of a foreign directory)."""
    meta = Path(model_dir) / INIT_FILE
    if meta.exists():
        return read_json(meta)["fingerprint"]
    return weights_fingerprint(model_dir)


def head_parameter_names(model, missing_keys: list[str] | None = None) -> list[str]:
    """Names of the reward head's parameters: the keys `from_pretrained` had to initialise (`missing_keys`, from its
    loading info) when a head was just drawn, else the usual head module of a model that has one."""
    if missing_keys:
        return sorted(missing_keys)
    # A checkpoint that already has a head (e.g. a trained reward model): the usual head attribute names.
    for attr in ("score", "classifier", "v_head"):
        module = getattr(model, attr, None)
        if isinstance(module, torch.nn.Module):
            return sorted(f"{attr}.{name}" for name, _ in module.named_parameters())
    raise WarmError(f"{type(model).__name__}: cannot find the reward head (no missing keys, no score/classifier module)")


def save_reward_model(out_dir: str | Path, model, tokenizer, contract: InputContract) -> None:
    """Weights (safetensors), tokenizer and input contract of a reward model, saved so that every tool reads the
    contract: warm_contract.json, the tokenizer's truncation side and length, config.json's problem type."""
    apply_to_save(tokenizer, getattr(model, "config", None), contract)
    model.save_pretrained(out_dir, safe_serialization=True)  # a PeftModel writes only its adapter
    tokenizer.save_pretrained(out_dir)
    write_contract(out_dir, contract)
