"""Accuracies on the subsets every experiment reports, and paired comparisons, from per-pair rewards.

Subsets (shared/README.md and issue #3): all pairs; length-adversarial pairs (the chosen answer is shorter);
a length-balanced subset (every chosen-shorter pair plus as many chosen-longer pairs, taken in file order, so
"the longer answer wins" scores 50% on it); and, for corrupted training data, the corrupted and clean pairs.
"""

from __future__ import annotations

import numpy as np

from warm.data.formats import PreferenceData
from warm import metrics
from warm.metrics import accuracy_summary, length_baseline_correct, paired_bootstrap_diff, pairwise_correct
from warm.score.reductions import DEFAULT_LAM, reduce_scores

Scores = tuple[np.ndarray, np.ndarray]  # (chosen rewards, rejected rewards) per pair


def subset_masks(data: PreferenceData) -> dict[str, np.ndarray]:
    """warm.metrics.subset_masks; the corrupted/clean split only where some labels were swapped."""
    corrupted = data.corrupted if data.corrupted is not None and any(data.corrupted) else None
    return metrics.subset_masks(data.chosen_texts(), data.rejected_texts(), corrupted)


def ensemble(scores: list[Scores], reduction: str = "mean", lam: float = DEFAULT_LAM) -> Scores:
    """Prediction ensemble of members' rewards (ENS), with the same reductions as warm.score."""
    chosen = reduce_scores(np.stack([c for c, _ in scores]), reduction, lam)
    rejected = reduce_scores(np.stack([r for _, r in scores]), reduction, lam)
    return chosen, rejected


def correct(scores: Scores) -> np.ndarray:
    return pairwise_correct(*scores)


def summarize(values: np.ndarray, masks: dict[str, np.ndarray], n_boot: int, seed: int) -> dict:
    return {name: accuracy_summary(values[mask], n_boot=n_boot, seed=seed) for name, mask in masks.items()}


def compare(a: np.ndarray, b: np.ndarray, masks: dict[str, np.ndarray], n_boot: int, seed: int) -> dict:
    """Paired bootstrap of mean(a) - mean(b) per subset (same pairs resampled for both)."""
    return {name: paired_bootstrap_diff(a[mask], b[mask], n_boot=n_boot, seed=seed)
            for name, mask in masks.items() if mask.any()}


def length_baseline(data: PreferenceData, masks: dict[str, np.ndarray], n_boot: int, seed: int) -> dict:
    return summarize(length_baseline_correct(data.chosen_texts(), data.rejected_texts()), masks, n_boot, seed)


def margin_difference(a: Scores, b: Scores) -> np.ndarray:
    """Per-pair difference of reward margins (chosen - rejected) between two scorers, e.g. WA minus ENS."""
    return (a[0] - a[1]) - (b[0] - b[1])


def reward_correlation(a: Scores, b: Scores) -> float | None:
    return metrics.correlation(np.concatenate(a), np.concatenate(b))
