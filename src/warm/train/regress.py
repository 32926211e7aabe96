"""Pointwise reward regression: a reward model fitted to one score per response (mean squared error).

The WARM paper tells reward hacking from progress with a *control* reward model that knows more than any proxy
(Ramé et al. 2024, arXiv 2401.12187, Sec. 5). The benchmark's control is fitted here to a numeric score per
(prompt, response), e.g. logit(gold) of every output of the AlpacaEval pool, instead of to preference pairs.

Why not TRL: its RewardTrainer is pairwise (Bradley-Terry) only. transformers' Trainer with a one-output sequence
classifier and `problem_type="regression"` is exactly this (the model's own MSE loss), so that is what runs.
Targets are standardised (zero mean, unit variance) for a well-scaled loss; the saved model therefore predicts
the target in standard units, which leaves every comparison (pairwise accuracy, best-of-N, win rates) unchanged.
The output is a standard HF directory, loaded by every warm scorer like any reward model, plus `warm_regress.json`
(target mean and scale, settings, metrics).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from warm.errors import WarmError
from warm.fileio import atomic_directory, write_json
from warm.rundir import REGRESS_FILE



@dataclass(frozen=True)
class RegressSettings:
    learning_rate: float = 5e-5
    batch_size: int = 16
    epochs: float = 1.0
    max_length: int = 128
    seed: int = 0
    warmup_ratio: float = 0.05
    precision: str = "fp32"  # resolved: "fp32" or "bf16" (autocast, weights stay float32)


def standardise(targets: Sequence[float], field: str = "targets") -> tuple[np.ndarray, float, float]:
    """(standardised targets, mean, scale); a clear error for non-finite or constant targets."""
    values = np.asarray(targets, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise WarmError(f"{field}: expected a non-empty list of numbers")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise WarmError(f"{field}[{bad[0]}] is {values[bad[0]]}: every target must be a finite number")
    mean, scale = float(values.mean()), float(values.std())
    if not scale > 0:
        raise WarmError(f"{field}: all {len(values)} targets equal {mean}; a regression needs them to vary")
    return (values - mean) / scale, mean, scale


def fit_pointwise_reward(init: str | Path, prompts: Sequence[str], responses: Sequence[str],
                         targets: Sequence[float], out: str | Path, settings: RegressSettings = RegressSettings(),
                         *, progress: bool = True, force: bool = False) -> dict:
    """Fine-tune the one-output sequence classifier in `init` to predict standardised `targets` of
    (prompt, response) texts; write it to `out` (atomically) and return the warm_regress.json payload."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from warm.data.contract import PairEncoder
    from warm.models.contract_files import training_contract
    from warm.models.init import save_reward_model
    from warm.models.loading import load_reward_model, load_tokenizer
    from warm.models.runtime import default_device, quiet, trainer_arguments

    if not (len(prompts) == len(responses) == len(targets)):
        raise WarmError(f"prompts, responses and targets differ in length: "
                        f"{len(prompts)}, {len(responses)}, {len(targets)}")
    z, mean, scale = standardise(targets)
    if Path(out).exists() and not force:
        raise WarmError(f"{out}: already exists (pass force=True to overwrite)")
    tokenizer = load_tokenizer(str(init))
    model = load_reward_model(str(init))
    if model.config.num_labels != 1:
        raise WarmError(f"{init}: num_labels={model.config.num_labels}, a reward model needs 1 (build it with `warm init`)")
    model.config.problem_type = "regression"  # the model's loss becomes MSE against float labels
    contract = training_contract(init, tokenizer, settings.max_length)  # read as every warm reward model reads
    sequences, _ = PairEncoder(tokenizer, contract).encode_many(prompts, responses)
    dataset = Dataset.from_dict({"input_ids": sequences, "labels": z.astype(np.float32).tolist(),
                                 "length": [len(s) for s in sequences]})
    steps = math.ceil(len(dataset) / settings.batch_size * settings.epochs)
    with tempfile.TemporaryDirectory(prefix="warm-regress-") as scratch:
        args = TrainingArguments(**trainer_arguments(
            settings.precision, default_device(), progress,
            output_dir=scratch, learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.batch_size, num_train_epochs=settings.epochs,
            seed=settings.seed, data_seed=settings.seed, warmup_steps=settings.warmup_ratio,
            lr_scheduler_type="linear",
            train_sampling_strategy="group_by_length",  # batches of similar length: less padding
            logging_steps=max(1, steps // 20)))
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer))
        quiet(trainer, progress)
        start = time.perf_counter()
        output = trainer.train()
        wall = time.perf_counter() - start
        history = [entry for entry in trainer.state.log_history if "loss" in entry]
    payload = {
        "target_mean": mean, "target_scale": scale,
        "prediction": "standardised target: (target - target_mean) / target_scale",
        "init": str(init), "n_examples": len(dataset), "settings": asdict(settings),
        "metrics": {"steps": trainer.state.global_step, "train_loss": output.training_loss,
                    "final_loss": history[-1]["loss"] if history else None, "wall_seconds": wall,
                    "examples_per_second": trainer.state.global_step * settings.batch_size / wall if wall else None},
        "log_history": history,
    }
    with atomic_directory(out, force=force) as tmp:
        save_reward_model(tmp, model, tokenizer, contract)
        write_json(Path(tmp) / REGRESS_FILE, payload)
    return payload
