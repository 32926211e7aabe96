"""A warm reward (one reward model, a WARM merge, an ensemble) as a reward function for TRL's online trainers.

TRL's GRPOTrainer and RLOOTrainer call each entry of `reward_funcs` as `f(prompts=..., completions=...,
completion_ids=..., trainer_state=..., **dataset_columns)` and expect one float per completion; they log the mean
and std of each under `rewards/{f.__name__}/...`. `WarmRewardFunction` is such a callable around any warm scorer,
so the reward model that WARM makes more reliable under distribution shift (Ramé et al. 2024, arXiv 2401.12187)
is what the policy is optimised against.

This module does not import TRL: it only has to be called the way TRL calls it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from warm.data.contract import prompt_text, response_text
from warm.errors import WarmError

NORMALIZATIONS = (None, "batch", "running")


class WarmRewardFunction:
    """A reward function for TRL's GRPOTrainer / RLOOTrainer, built from a warm scorer or a scorer spec.

    `reward` is one of:
      - a scorer spec string (`warm.score.spec`): `runs/x/warm` (one model or a WARM merge), `DIR1,DIR2` (the mean
        of an ensemble, ENS), `min:DIR1,DIR2`, `mean_minus_std=0.5:DIR1,DIR2`; built with `scorer_kwargs`
        (batch_size, max_length, device, precision, ...), each model loaded once;
      - a warm scorer (anything with `score_texts(prompts, responses) -> np.ndarray`);
      - a plain callable `f(prompts: list[str], responses: list[str]) -> sequence of floats` (a constructed
        reward, a gold model behind an API).

    Calling it with TRL's arguments returns one float per completion. Both TRL dataset formats work:
      - standard: `prompts` and `completions` are lists of strings;
      - conversational: lists of `{role, content}` messages.
    A warm scorer reads either through each model's input contract (warm.data.contract), so a conversational
    (prompt, completion) gets exactly the reward of the same turns as text, the function the model was trained as.
    A plain callable gets text: the user turns' content as the prompt, the assistant turns' as the response.
    Other keyword arguments (completion_ids, trainer_state, dataset columns) are accepted and ignored.

    `normalize` (off by default): "batch" standardises the rewards of each call to mean 0, std 1; "running"
    standardises with the mean and std of every reward seen so far (this call included). RLOO and GRPO already
    subtract a per-prompt baseline, so only the scale matters: it sets how strong the KL term `beta` is relative
    to the reward.

    `__name__` (what TRL logs, `rewards/{name}/mean`) is `name`, else the scorer's name (a spec's last directory,
    e.g. "warm"), else the callable's.

    Usage with TRL::

        from trl import GRPOConfig, GRPOTrainer
        from warm.integrations.reward_function import WarmRewardFunction

        reward = WarmRewardFunction("runs/x/warm")       # or "min:runs/x/members/m00,..."
        trainer = GRPOTrainer(model="path/to/policy", reward_funcs=reward,
                              args=GRPOConfig(output_dir="runs/grpo", beta=0.01), train_dataset=prompts)
        trainer.train()

    RLOOTrainer takes it the same way (`RLOOTrainer(model=..., reward_funcs=reward, args=RLOOConfig(...), ...)`);
    several rewards can be combined with `reward_funcs=[reward, other]` and `reward_weights`.
    """

    def __init__(
        self,
        reward: str | os.PathLike | Any | Callable[[list[str], list[str]], Sequence[float]],
        *,
        name: str | None = None,
        normalize: str | None = None,
        eps: float = 1e-6,
        **scorer_kwargs: Any,
    ) -> None:
        if normalize not in NORMALIZATIONS:
            raise WarmError(f"normalize {normalize!r}: expected None, 'batch' or 'running'")
        if isinstance(reward, (str, os.PathLike)):
            from warm.score.spec import parse_scorer_spec

            reward = parse_scorer_spec(os.fspath(reward), **scorer_kwargs)
        elif scorer_kwargs:
            raise WarmError(f"scorer options {', '.join(sorted(scorer_kwargs))} apply to a spec string only")
        if hasattr(reward, "score_texts"):
            self.scorer = reward
            self._score = lambda prompts, responses: reward.score_texts(list(prompts), list(responses))
            default_name = getattr(reward, "name", None) or type(reward).__name__
        elif callable(reward):
            self.scorer = None
            self._score = lambda prompts, responses: reward([prompt_text(p) for p in prompts],
                                                            [response_text(r) for r in responses])
            default_name = getattr(reward, "__name__", None) or type(reward).__name__
        else:
            raise WarmError(f"reward must be a scorer spec, a scorer or a callable, got {type(reward).__name__}")
        self.__name__ = _clean_name(name or default_name)
        self.normalize = normalize
        self.eps = float(eps)
        # Running statistics (Chan et al.'s parallel form of Welford's update), for normalize="running".
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def __repr__(self) -> str:
        return f"WarmRewardFunction({self.__name__!r}, normalize={self.normalize!r})"

    def score(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """Raw (unnormalised) float64 rewards of (prompt, completion) pairs, in either TRL format."""
        if len(prompts) != len(completions):
            raise WarmError(f"{len(prompts)} prompts but {len(completions)} completions")
        if not len(prompts):
            return np.zeros(0)
        rewards = np.asarray(self._score(prompts, completions), dtype=np.float64)
        if rewards.shape != (len(prompts),):
            raise WarmError(f"reward {self.__name__}: expected {len(prompts)} rewards, got shape {rewards.shape}")
        return rewards

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        rewards = self.score(prompts, completions)
        if self.normalize == "batch" and rewards.size:
            rewards = (rewards - rewards.mean()) / (rewards.std() + self.eps)
        elif self.normalize == "running" and rewards.size:
            self._update(rewards)
            std = math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0
            rewards = (rewards - self.mean) / (std + self.eps)
        return [float(r) for r in rewards]

    def _update(self, batch: np.ndarray) -> None:
        n, mean, m2 = batch.size, float(batch.mean()), float(((batch - batch.mean()) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total


def _clean_name(name: str) -> str:
    """A name TRL can use in metric keys and wandb column names: no '/', no whitespace."""
    return re.sub(r"[/\s]+", "_", str(name)).strip("_") or "warm_reward"
