"""One member's fine-tuning: load the shared init with the member's dropout, train, save atomically.

A member directory is finished exactly when its `warm_member.json` exists (it is written last, inside the
temporary directory that is renamed into place), so resuming only has to look for that file.

LoRA members (`warm train --lora-r R`): the init is wrapped by PEFT (Hu et al. 2021, LoRA) so that only low-rank
factors and the reward head train, and the member directory holds a PEFT adapter (adapter_config.json +
adapter_model.safetensors) instead of full weights: M members cost M small adapters on disk, not M models. The
head is listed in `modules_to_save`, so each member keeps its own trained copy of it (PEFT saves it whole).
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from warm import __version__
from warm.config import TrainConfig
from warm.data.tokenize import TokenizedPairs
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.models.dropout import set_dropout
from warm.data.contract import InputContract
from warm.models.init import head_parameter_names, save_reward_model
from warm.models.loading import load_reward_model, load_tokenizer
from warm.train.fit import FitSettings, fit_reward_model, pairs_dataset, total_steps
from warm.train.plan import TrainingSettings, member_key
from warm.rundir import MEMBER_FILE, TrainRun, timestamp


def member_dir(run_dir: str | Path, name: str) -> Path:
    return TrainRun(Path(run_dir)).member(name)


def finished_member(run_dir: str | Path, plan: dict, member: dict) -> dict | None:
    """The member's metadata if it finished with exactly this plan entry, else None."""
    meta_path = member_dir(run_dir, member["name"]) / MEMBER_FILE
    if not meta_path.exists():
        return None
    meta = read_json(meta_path)
    return meta if meta.get("member_key") == member_key(plan, member) else None


def lora_settings(config: TrainConfig) -> dict | None:
    """The plan's `training.lora` entry (None when --lora-r is 0): rank, alpha, dropout and target modules.

    They change what members learn, so they belong to the plan's training settings (and its hash).
    """
    if config.lora_r == 0:
        return None
    if config.lora_r < 0:
        raise WarmError(f"--lora-r {config.lora_r}: must be a positive rank (0 trains all weights)")
    alpha = float(config.lora_r if config.lora_alpha is None else config.lora_alpha)
    if alpha <= 0:
        raise WarmError(f"--lora-alpha {alpha:g}: must be positive")
    if not 0.0 <= config.lora_dropout < 1.0:
        raise WarmError(f"--lora-dropout {config.lora_dropout:g}: must be in [0, 1)")
    targets = [t.strip() for t in (config.lora_targets or ()) if t.strip()]
    return {"r": int(config.lora_r), "alpha": alpha, "dropout": float(config.lora_dropout), "targets": targets}


def head_modules(model) -> list[str]:
    """The reward head's module names (BERT `classifier`, Llama `score`), found as `warm init` finds the head."""
    return sorted({name.rsplit(".", 1)[0] for name in head_parameter_names(model)})


def wrap_lora(model, settings: dict, init: str):
    """The PEFT model to train: LoRA on `settings["targets"]` (PEFT's default for the architecture when empty),
    the reward head fully trainable and saved with the adapter (`modules_to_save`)."""
    from peft import LoraConfig, get_peft_model  # optional dependency, needed only for LoRA members

    config = LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=settings["targets"] or None,
        modules_to_save=head_modules(model),
        task_type="SEQ_CLS",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # PEFT's message for unknown or absent target modules
        raise WarmError(f"{init}: cannot apply LoRA ({str(exc).splitlines()[0]}); set --lora-targets") from None


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
    training = TrainingSettings.from_plan(plan["training"])
    config = AutoConfig.from_pretrained(init)
    dropout_fields = set_dropout(config, member["dropout"], training.attention_dropout)
    model = load_reward_model(init, config=config)
    tokenizer = load_tokenizer(init)
    if model.config.num_labels != 1:
        raise WarmError(f"{init}: num_labels={model.config.num_labels}, a reward model needs 1 (build it with `warm init`)")
    lora = training.lora
    if lora:
        # Wrapped here rather than by TRL (fit's peft_config) because the PeftModel is what saves the adapter.
        model = wrap_lora(model, lora, init)
    settings = training.fit_settings(member)
    dataset = pairs_dataset(pairs, margins)
    contract = InputContract.from_json(training.contract, "plan.json: training.contract")
    staging = member_dir(run_dir, f".{member['name']}.checkpoints.tmp")
    callbacks = _checkpoint_callbacks(training, member, dataset, settings, staging, tokenizer, contract)
    metrics = fit_reward_model(model, tokenizer, dataset, settings, progress=progress, callbacks=callbacks)
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
        "finished": timestamp(),
    }
    if lora:
        peft_config = model.peft_config["default"]
        payload["lora"] = {
            **lora,
            "base": init,  # the adapter is a difference from these weights: merging needs them
            "target_modules": sorted(peft_config.target_modules),
            "modules_to_save": sorted(set(peft_config.modules_to_save or ())),
        }
    with atomic_directory(member_dir(run_dir, member["name"]), force=True) as tmp:
        save_reward_model(tmp, model, tokenizer, contract)
        if staging.exists():
            staging.rename(Path(tmp) / "checkpoints")
        write_json(Path(tmp) / MEMBER_FILE, payload)
    return payload


def _checkpoint_callbacks(training: TrainingSettings, member: dict, dataset, settings: FitSettings, staging: Path,
                          tokenizer, contract: InputContract) -> list:
    """A SaveAtSteps callback writing part-way checkpoints (HF dirs with their own warm_member.json) to `staging`."""
    fractions = training.checkpoints
    if not fractions:
        return []
    from warm.train.checkpoints import SaveAtSteps, steps_at_fractions

    total = total_steps(len(dataset), settings)
    at = steps_at_fractions(fractions, total)

    def save(step: int, model, history: list[dict]) -> None:
        with atomic_directory(staging / f"step-{step:06d}", force=True) as tmp:
            save_reward_model(tmp, model, tokenizer, contract)
            write_json(Path(tmp) / MEMBER_FILE, {
                "name": f"{member['name']}@{step}", "checkpoint_of": member["name"], "step": step,
                "fraction": at[step], "total_steps": total, "init_fingerprint": member["init_fingerprint"],
                "plan_entry": member, "loss": history[-1]["loss"] if history else None})

    return [SaveAtSteps(at, save)]
