"""Rewards cached on disk: one .npy per (model weights, token sequences, scoring settings).

Experiments and best-of-N score the same model on the same sequences many times over (every N, every figure,
every re-run); the key holds everything the rewards depend on, so a cached file never goes stale and a changed
model, text or setting simply misses the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from warm.fileio import sha256_json


def cached_sequence_scores(model_dir: str | Path, seqs: list[list[int]], cache_dir: str | Path, *, weights_digest: str,
                           data_key: dict, max_length: int, precision: str, batch_size: int = 32,
                           device: str | None = None, progress: bool = False, desc: str | None = None) -> np.ndarray:
    """Rewards of `seqs` under the model in `model_dir`, from `cache_dir` when already computed.

    `weights_digest` identifies the weights (warm.models.init.weights_fingerprint) and `data_key` the sequences
    (e.g. a data file's hash and the rows taken); both come from the caller, which already holds them (hashing a
    model's weights costs a full read). A cached file of the wrong length is recomputed.
    """
    from warm.score.scorer import RewardModelScorer

    key = sha256_json({"weights": weights_digest, **data_key, "max_length": max_length, "precision": precision})
    path = Path(cache_dir) / f"{key[:24]}.npy"
    if path.exists():
        scores = np.load(path)
        if scores.shape == (len(seqs),):
            return scores
    scorer = RewardModelScorer(str(model_dir), max_length=max_length, precision=precision, batch_size=batch_size,
                               device=device)
    scores = scorer.score_sequences(seqs, progress=progress, desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{path.stem[:6]}.tmp.npy")
    np.save(tmp, scores)
    tmp.replace(path)  # atomic: a crash never leaves a truncated cache entry
    return scores
