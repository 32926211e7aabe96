"""Pairwise preference metrics and bootstrap intervals: pure numpy, the one place these are defined.

Pairwise accuracy is the fraction of pairs where the chosen response gets the higher reward; a tie counts half
(a coin flip's expected score), so a constant reward scores exactly 0.5. Intervals are percentile bootstraps of
the mean over pairs; comparisons between two scorers resample the same pairs for both (a paired bootstrap), which
removes the shared difficulty of the pairs from the variance of the difference.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from warm.errors import WarmError

# Rows of the bootstrap index matrix are drawn in chunks of at most this many indices (8 bytes each: 32 MiB).
_CHUNK_ELEMENTS = 1 << 22


def pairwise_correct(chosen_scores: np.ndarray, rejected_scores: np.ndarray) -> np.ndarray:
    """Per pair: 1.0 when chosen > rejected, 0.5 on a tie, 0.0 otherwise."""
    chosen = np.asarray(chosen_scores, dtype=np.float64)
    rejected = np.asarray(rejected_scores, dtype=np.float64)
    if chosen.shape != rejected.shape or chosen.ndim != 1:
        raise WarmError(f"chosen and rejected scores must be 1-D and of one length, got {chosen.shape} and {rejected.shape}")
    if np.isnan(chosen).any() or np.isnan(rejected).any():
        raise WarmError("scores contain NaN: the reward model is broken (or ran in a dtype that overflowed)")
    return np.where(chosen > rejected, 1.0, np.where(chosen == rejected, 0.5, 0.0))


def standard_error(values: Sequence[float] | np.ndarray) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n)); 0.0 for a single value (no spread seen:
    JSON-safe, where NaN is not)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of `values`; deterministic given `seed`."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        raise WarmError("bootstrap of an empty set of values")
    if n_boot < 1:
        raise WarmError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise WarmError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def accuracy_summary(correct: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """{"accuracy", "lo", "hi", "n"} of per-pair correctness; an empty subset gives None for the numbers."""
    correct = np.asarray(correct, dtype=np.float64)
    if correct.size == 0:
        return {"accuracy": None, "lo": None, "hi": None, "n": 0}
    lo, hi = bootstrap_ci(correct, n_boot=n_boot, seed=seed, alpha=alpha)
    return {"accuracy": float(correct.mean()), "lo": lo, "hi": hi, "n": int(correct.size)}


def paired_bootstrap_diff(
    a_values: np.ndarray, b_values: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """{"diff", "lo", "hi"}: mean(a) - mean(b) with a paired bootstrap interval (the same pairs drawn for both).

    Resampling the per-pair differences is exactly resampling pair indices shared by a and b.
    """
    a = np.asarray(a_values, dtype=np.float64)
    b = np.asarray(b_values, dtype=np.float64)
    if a.shape != b.shape:
        raise WarmError(f"paired values differ in shape: {a.shape} and {b.shape}")
    if a.size == 0:
        return {"diff": None, "lo": None, "hi": None}
    diff = a - b
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed, alpha=alpha)
    return {"diff": float(diff.mean()), "lo": lo, "hi": hi}


def _char_lengths(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))


def length_baseline_correct(chosen_texts: Sequence[str], rejected_texts: Sequence[str]) -> np.ndarray:
    """Per-pair correctness of "the longer response (in characters) wins": the baseline every accuracy needs beside it.

    Judges, human and LLM alike, favour longer answers (shared/README.md: about 72-76% on the AlpacaEval pool).
    """
    return pairwise_correct(_char_lengths(chosen_texts), _char_lengths(rejected_texts))


def length_adversarial_mask(chosen_texts: Sequence[str], rejected_texts: Sequence[str]) -> np.ndarray:
    """Pairs whose chosen response is strictly shorter: where a length-driven reward is wrong by construction."""
    if len(chosen_texts) != len(rejected_texts):
        raise WarmError(f"chosen and rejected differ in length: {len(chosen_texts)}, {len(rejected_texts)}")
    return _char_lengths(chosen_texts) < _char_lengths(rejected_texts)


def subset_masks(chosen_texts: Sequence[str], rejected_texts: Sequence[str],
                 corrupted: Sequence[bool] | None = None) -> dict[str, np.ndarray]:
    """The pair subsets every evaluation reports, as boolean masks (shared/README.md):
    all; length_adversarial (the chosen answer is strictly shorter); length_balanced (every chosen-shorter pair plus
    as many chosen-longer pairs, in order, so "the longer answer wins" scores about 50% on it); and, when the data
    records corrupted labels, corrupted and clean."""
    shorter = length_adversarial_mask(chosen_texts, rejected_texts)
    balanced = shorter.copy()
    balanced[np.flatnonzero(~shorter)[: int(shorter.sum())]] = True
    masks = {"all": np.ones(len(shorter), dtype=bool), "length_adversarial": shorter, "length_balanced": balanced}
    if corrupted is not None:
        flags = np.asarray(corrupted, dtype=bool)
        masks.update({"corrupted": flags, "clean": ~flags})
    return masks


def correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of two reward vectors; None when either is constant (or has fewer than 2 values)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman correlation (the Pearson correlation of the ranks; rewards of distinct texts practically never tie)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    return correlation(np.argsort(np.argsort(x)), np.argsort(np.argsort(y))) if x.size else None
