"""One member's fine-tuning: load the shared init with the member's dropout, train, save atomically.

A member directory is finished exactly when its `warm_member.json` exists (it is written last, inside the
temporary directory that is renamed into place), so resuming only has to look for that file.
"""

from __future__ import annotations

import time
from pathlib import Path

from transformers import AutoConfig

from warm import __version__
from warm.data.tokenize import TokenizedPairs
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.models.dropout import set_dropout
from warm.models.init import MEMBER_META
from warm.models.loading import load_reward_model, load_tokenizer
from warm.train.fit import FitSettings, fit_reward_model, pairs_dataset
from warm.train.plan import member_key


def member_dir(run_dir: str | Path, name: str) -> Path:
    return Path(run_dir) / "members" / name


def finished_member(run_dir: str | Path, plan: dict, member: dict) -> dict | None:
    """The member's metadata if it finished with exactly this plan entry, else None."""
    meta_path = member_dir(run_dir, member["name"]) / MEMBER_META
    if not meta_path.exists():
        return None
    meta = read_json(meta_path)
    return meta if meta.get("member_key") == member_key(plan, member) else None


def train_member(
    run_dir: str | Path,
    plan: dict,
    member: dict,
    pairs: TokenizedPairs,
    margins: list[float] | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune one member from its init and write RUN/members/NAME; return its warm_member.json payload."""
    init = member["init"]
    config = AutoConfig.from_pretrained(init)
    dropout_fields = set_dropout(config, member["dropout"])
    model = load_reward_model(init, config=config)
    tokenizer = load_tokenizer(init)
    if model.config.num_labels != 1:
        raise WarmError(f"{init}: num_labels={model.config.num_labels}, a reward model needs 1 (build it with `warm init`)")
    training = plan["training"]
    settings = FitSettings(
        learning_rate=member["learning_rate"],
        batch_size=training["batch_size"],
        epochs=training["epochs"],
        max_steps=training["max_steps"],
        seed=member["seed"],
        warmup_ratio=training["warmup_ratio"],
        weight_decay=training["weight_decay"],
        precision=training.get("precision", "fp32"),
    )
    metrics = fit_reward_model(model, tokenizer, pairs_dataset(pairs, margins), settings, progress=progress)
    payload = {
        "name": member["name"],
        "plan_entry": member,
        "member_key": member_key(plan, member),
        "plan_hash": plan["plan_hash"],
        "init": init,
        "init_fingerprint": member["init_fingerprint"],
        "dropout_fields": dropout_fields,
        "metrics": {k: v for k, v in metrics.items() if k != "log_history"},
        "log_history": metrics["log_history"],
        "warm_version": __version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_directory(member_dir(run_dir, member["name"]), force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / MEMBER_META, payload)
    return payload
