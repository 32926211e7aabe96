"""`warm init`: the one starting point every member shares (WARM step 1, Ramé et al. 2024, Sec. 3).

The reward head is initialised once, with a seed, and saved with the backbone; members load this directory and
never re-draw the head, which is what keeps their fine-tunings linearly mode connected. Optionally the head is
linear-probed first (backbone frozen), the paper's LP-init.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from warm import __version__
from warm.config import InitConfig, to_dict
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.data.contract import InputContract, PairEncoder, new_contract
from warm.models.contract_files import apply_to_save, write_contract
from warm.models.loading import load_reward_model, load_tokenizer, resolve_model_path
from warm.rundir import INIT_FILE, timestamp



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


def head_parameter_names(model) -> list[str]:
    """Names of the reward head's parameters: those `from_pretrained` had to initialise (missing keys)."""
    info = getattr(model, "_warm_missing_keys", None)
    if info:
        return sorted(info)
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


def build_init(config: InitConfig, progress: bool = True) -> dict:
    """Build and save the shared init; return its warm_init.json payload."""
    source = resolve_model_path(config.model)
    tokenizer = load_tokenizer(source, trust_remote_code=config.trust_remote_code)
    contract = new_contract(tokenizer, config.max_length)  # gives a template-less tokenizer warm's template
    # Seeding right before loading makes the freshly drawn head a function of --head-seed alone.
    torch.manual_seed(config.head_seed)
    model, loading_info = load_reward_model(source, trust_remote_code=config.trust_remote_code, output_loading_info=True)
    model._warm_missing_keys = [k for k in loading_info.get("missing_keys", []) if k]
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))  # a <pad> token was added (see ensure_pad_token)
    model.config.pad_token_id = tokenizer.pad_token_id
    head = head_parameter_names(model)

    probe_metrics = None
    if config.linear_probe:
        from warm.train.probe import linear_probe

        probe_metrics = linear_probe(model, PairEncoder(tokenizer, contract), config, head, progress=progress)

    with atomic_directory(config.out, force=config.force) as tmp:
        save_reward_model(tmp, model, tokenizer, contract)
        payload = {
            "fingerprint": weights_fingerprint(tmp),
            "base_model": config.model,
            "base_model_path": source,
            "head_parameters": head,
            "head_seed": config.head_seed,
            "pad_token": tokenizer.pad_token,
            "chat_template": contract.template,
            "linear_probe": probe_metrics,
            "config": to_dict(config),
            "warm_version": __version__,
            "created": timestamp(),
        }
        write_json(Path(tmp) / INIT_FILE, payload)
    return payload
