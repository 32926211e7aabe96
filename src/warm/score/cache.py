"""Rewards cached on disk: one .npy per (model weights, input contract and tokenizer, inputs, precision).

Experiments and best-of-N score the same model on the same inputs many times over (every N, every figure, every
re-run); the key holds everything the rewards depend on, so a cached file never goes stale and a changed model,
contract, text or setting simply misses the cache. Scoring itself is the scorer's (warm.score.scorer): the same
encoding and batching as `warm eval` and `warm serve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from warm.fileio import atomic_file, sha256_json


def cached_rewards(model_dir: str | Path, prompts: Sequence, responses: Sequence, cache_dir: str | Path, *,
                   weights_digest: str, data_key: dict, precision: str, batch_size: int = 32,
                   max_length: int | None = None, device: str | None = None, progress: bool = False,
                   desc: str | None = None) -> np.ndarray:
    """Rewards of (prompt, response) pairs under the model in `model_dir`, from `cache_dir` when already computed.

    `weights_digest` identifies the weights (warm.models.init.weights_fingerprint) and `data_key` the inputs (e.g. a
    data file's hash and the rows taken); both come from the caller, which already holds them (hashing a model's
    weights costs a full read). `max_length` overrides the model's own length (None: its contract's). A cached file
    of the wrong length is recomputed.
    """
    from warm.models.loading import load_encoder
    from warm.score.scorer import RewardModelScorer

    inputs = load_encoder(str(model_dir), max_length=max_length).signature
    key = sha256_json({"weights": weights_digest, **data_key, "inputs": inputs, "precision": precision})
    path = Path(cache_dir) / f"{key[:24]}.npy"
    if path.exists():
        scores = np.load(path)
        if scores.shape == (len(prompts),):
            return scores
    scorer = RewardModelScorer(str(model_dir), precision=precision, batch_size=batch_size, max_length=max_length,
                               device=device)
    scores = scorer.score_texts(prompts, responses, progress=progress, desc=desc)
    with atomic_file(path, "wb") as handle:  # a crash never leaves a truncated cache entry
        np.save(handle, scores)
    return scores


def cached_pair_rewards(model_dir: str | Path, data, cache_dir: str | Path, **options) -> tuple[np.ndarray, np.ndarray]:
    """(chosen rewards, rejected rewards) of PreferenceData through `cached_rewards` (options as there)."""
    n = len(data)
    rewards = cached_rewards(model_dir, list(data.prompt) * 2, list(data.chosen) + list(data.rejected), cache_dir,
                             **options)
    return rewards[:n], rewards[n:]
