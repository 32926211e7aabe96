"""`warm init`: the one starting point every member shares (WARM step 1, Ramé et al. 2024, Sec. 3).

The reward head is initialised once, with a seed, and saved with the backbone; members load this directory and
never re-draw the head, which is what keeps their fine-tunings linearly mode connected. Optionally the head is
linear-probed first (backbone frozen), the paper's LP-init (warm.train.probe).
"""

from __future__ import annotations

from pathlib import Path

import torch

from warm import __version__
from warm.config import InitConfig, to_dict
from warm.data.contract import PairEncoder, new_contract
from warm.fileio import atomic_directory, write_json
from warm.models.init import head_parameter_names, save_reward_model, weights_fingerprint
from warm.models.loading import load_reward_model, load_tokenizer, resolve_model_path
from warm.rundir import INIT_FILE, timestamp


def build_init(config: InitConfig, progress: bool = True) -> dict:
    """Build and save the shared init; return its warm_init.json payload."""
    source = resolve_model_path(config.model)
    tokenizer = load_tokenizer(source, trust_remote_code=config.trust_remote_code)
    contract = new_contract(tokenizer, config.max_length)  # gives a template-less tokenizer warm's template
    # Seeding right before loading makes the freshly drawn head a function of --head-seed alone.
    torch.manual_seed(config.head_seed)
    model, loading_info = load_reward_model(source, trust_remote_code=config.trust_remote_code, output_loading_info=True)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))  # a <pad> token was added (see ensure_pad_token)
    model.config.pad_token_id = tokenizer.pad_token_id
    head = head_parameter_names(model, [k for k in loading_info.get("missing_keys", []) if k])

    probe_metrics = None
    if config.linear_probe:
        from warm.train.probe import linear_probe  # TRL is imported only when the head is probed

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
