"""Saving intermediate checkpoints of one training run (a transformers TrainerCallback).

Two uses: `warm sft` saves backbone checkpoints along one LM run (the Baklava variant's inits), and
`warm train --checkpoints 0.5` saves members part-way (two checkpoints of one run: the paper's weakest source of
diversity, Ramé et al. 2024, Fig. 5).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from transformers import TrainerCallback


class SaveAtSteps(TrainerCallback):
    """Calls `save(step, model, loss_history)` at each step in `steps`.

    It forces a log at each save step and saves in `on_log`, so the checkpoint can record its loss.
    """

    def __init__(self, steps: Iterable[int], save: Callable[[int, object, list[dict]], None]):
        self.steps, self.save, self.seconds = set(steps), save, 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_log = True

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if state.global_step in self.steps and "loss" in (logs or {}):
            self.steps.discard(state.global_step)
            start = time.perf_counter()
            self.save(state.global_step, model, [e for e in state.log_history if "loss" in e])
            self.seconds += time.perf_counter() - start


def steps_at_fractions(fractions: Iterable[float], total_steps: int) -> dict[int, float]:
    """{step: fraction} for fractions in (0, 1): the step where that share of training is done (at least 1)."""
    return {max(1, min(total_steps - 1, round(f * total_steps))): f for f in fractions if 0 < f < 1}
