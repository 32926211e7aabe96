"""Bradley-Terry fine-tuning of one reward model with TRL's RewardTrainer, on pre-tokenised pairs.

Besides the arguments every warm trainer sets (warm.models.runtime.trainer_arguments), two TRL defaults would bias
WARM: `disable_dropout` is on (WARM wants dropout as a diversity source), and its `max_length` filter would drop
pairs (warm truncates instead, by the input contract, so `max_length=None`).
Each batch's forward pass is cut into buckets of similar length (warm.train.buckets): TRL pads a pair's shorter
side to its longer one.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import RewardConfig, RewardTrainer

from warm.data.tokenize import TokenizedPairs
from warm.models.runtime import default_device, quiet, trainer_arguments
from warm.train.buckets import BucketedForward


class BucketedRewardTrainer(RewardTrainer):
    """TRL's RewardTrainer, its loss and logging unchanged, with the forward pass run bucket by bucket."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return super().compute_loss(BucketedForward(model), inputs, return_outputs, num_items_in_batch)


@dataclass(frozen=True)
class FitSettings:
    learning_rate: float
    batch_size: int
    epochs: float
    max_steps: int
    seed: int
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    precision: str = "fp32"  # resolved: "fp32" or "bf16" (autocast, weights stay float32)


def total_steps(n_pairs: int, settings: FitSettings) -> int:
    """Optimiser steps of a fit: --max-steps, or the epochs over the pairs in batches (the last one partial)."""
    if settings.max_steps > 0:
        return settings.max_steps
    return int(round(max(1, -(-n_pairs // settings.batch_size)) * settings.epochs))


def pairs_dataset(pairs: TokenizedPairs, margins: list[float] | None = None) -> Dataset:
    """The dataset TRL's RewardTrainer takes as already processed: `chosen_ids` / `rejected_ids`.

    `length` (the longer side of each pair) lets the Trainer group batches by length, which cuts padding.
    """
    chosen, rejected = pairs.chosen_ids(), pairs.rejected_ids()
    columns = {
        "chosen_ids": chosen,
        "rejected_ids": rejected,
        "length": [max(len(c), len(r)) for c, r in zip(chosen, rejected)],
    }
    if margins is not None:
        columns["margin"] = [float(m) for m in margins]
    return Dataset.from_dict(columns)


def fit_reward_model(
    model,
    tokenizer,
    dataset: Dataset,
    settings: FitSettings,
    progress: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
    peft_config=None,
) -> dict:
    """Train `model` in place; return metrics (loss, accuracy, steps, pairs/s, wall time).

    `callbacks` are transformers TrainerCallbacks (e.g. saving intermediate checkpoints for experiments);
    `peft_config` is handed to TRL as is (LoRA members).
    """
    device = default_device()
    with tempfile.TemporaryDirectory(prefix="warm-trainer-") as scratch:
        args = RewardConfig(**trainer_arguments(
            settings.precision, device, progress,
            output_dir=scratch,
            learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.batch_size,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps,
            seed=settings.seed,
            data_seed=settings.seed,  # the member's data order
            warmup_steps=settings.warmup_ratio,
            weight_decay=settings.weight_decay,
            lr_scheduler_type="linear",
            disable_dropout=False,
            max_length=None,
            train_sampling_strategy="group_by_length",
            remove_unused_columns=False,  # keep `length` for the sampler; the collator ignores it
            logging_steps=max(1, total_steps(len(dataset), settings) // 10),
        ))
        trainer = BucketedRewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                        callbacks=list(callbacks), peft_config=peft_config)
        quiet(trainer, progress)
        start, cpu_start = time.perf_counter(), time.process_time()
        output = trainer.train()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        history = [entry for entry in trainer.state.log_history if "loss" in entry]
    pairs_seen = trainer.state.global_step * settings.batch_size
    return {
        "steps": trainer.state.global_step,
        "pairs_seen": min(pairs_seen, int(len(dataset) * settings.epochs)) if settings.max_steps <= 0 else pairs_seen,
        "train_loss": output.training_loss,
        "final_loss": history[-1]["loss"] if history else None,
        "final_accuracy": history[-1].get("accuracy") if history else None,
        "pairs_per_second": pairs_seen / wall if wall > 0 else None,
        "wall_seconds": wall,
        "cpu_seconds": cpu,  # every thread of the process: about threads x wall on an idle machine
        "log_history": history,
        "device": device,
        "precision": settings.precision,
        "threads": torch.get_num_threads() if device == "cpu" else None,
    }
