"""Bradley-Terry fine-tuning of one reward model with TRL's RewardTrainer, on pre-tokenised pairs.

TRL's defaults are set explicitly here because several break or bias WARM on the machines warm targets
(measured with TRL 1.16 on CPU): bf16 defaults to True (fails on CPU), gradient checkpointing defaults on
(slow for small models), `disable_dropout` defaults on (WARM wants dropout as a diversity source), and its
`max_length` filter would drop pairs (warm truncates instead, in warm.data.tokenize, so `max_length=None`).
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
from transformers import PrinterCallback, TrainerCallback
from trl import RewardConfig, RewardTrainer

from warm.data.tokenize import TokenizedPairs
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
    steps_per_epoch = max(1, -(-len(dataset) // settings.batch_size))
    planned_steps = settings.max_steps if settings.max_steps > 0 else int(round(steps_per_epoch * settings.epochs))
    with tempfile.TemporaryDirectory(prefix="warm-trainer-") as scratch:
        args = RewardConfig(
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
            bf16=settings.precision == "bf16",
            fp16=False,
            activation_checkpointing=False,
            disable_dropout=False,
            max_length=None,
            train_sampling_strategy="group_by_length",
            remove_unused_columns=False,  # keep `length` for the sampler; the collator ignores it
            logging_steps=max(1, planned_steps // 10),
            save_strategy="no",
            report_to=[],
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            use_cpu=not torch.cuda.is_available(),
        )
        trainer = BucketedRewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                        callbacks=list(callbacks), peft_config=peft_config)
        if not progress:  # with the bars off, transformers prints every log dict instead: --quiet means quiet
            trainer.remove_callback(PrinterCallback)
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
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "precision": settings.precision,
        "threads": torch.get_num_threads() if not torch.cuda.is_available() else None,
    }
