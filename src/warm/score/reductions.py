"""Ensemble reductions: how the rewards of M members become one reward. The one registry for them.

WARM (Ramé et al., 2024, arXiv 2401.12187) compares the weight average against prediction ensembling (ENS), which
averages the members' rewards. Pessimistic variants from the reward-ensemble literature (Coste et al., 2023,
arXiv 2310.02743; Eisenstein et al., 2023, arXiv 2312.09244) are here too: the worst member (`min`), and the
mean minus `lam` standard deviations (`mean_minus_std`), which penalises samples the members disagree on.

Every function takes the member scores as an [M, N] matrix (members x samples) and returns [N]. Adding a
reduction means adding one entry to `REDUCTIONS`; nothing registers itself on import.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from warm.errors import WarmError

Reduction = Callable[[np.ndarray, float], np.ndarray]


def _mean(member_scores: np.ndarray, lam: float) -> np.ndarray:
    return member_scores.mean(axis=0)


def _min(member_scores: np.ndarray, lam: float) -> np.ndarray:
    return member_scores.min(axis=0)


def _mean_minus_std(member_scores: np.ndarray, lam: float) -> np.ndarray:
    # Population std (ddof=0): the spread of these M members themselves, not an estimate for a wider population
    # of members; it is also defined for M = 1 (zero), where ddof=1 would divide by zero.
    return member_scores.mean(axis=0) - lam * member_scores.std(axis=0, ddof=0)


REDUCTIONS: dict[str, Reduction] = {
    "mean": _mean,
    "min": _min,
    "mean_minus_std": _mean_minus_std,
}

DEFAULT_LAM = 1.0


def check_reduction(reduction: str) -> Reduction:
    """The reduction function named `reduction`, or a WarmError listing the valid names."""
    try:
        return REDUCTIONS[reduction]
    except KeyError:
        raise WarmError(f"unknown ensemble reduction {reduction!r} (valid: {', '.join(REDUCTIONS)})") from None


def reduce_scores(member_scores: np.ndarray, reduction: str, lam: float = DEFAULT_LAM) -> np.ndarray:
    """Reduce an [M, N] matrix of member rewards to [N] with the named reduction (`lam` is used by mean_minus_std)."""
    fn = check_reduction(reduction)
    member_scores = np.asarray(member_scores)
    if member_scores.ndim != 2 or member_scores.shape[0] == 0:
        raise WarmError(f"member scores must be a non-empty [members, samples] matrix, got shape {member_scores.shape}")
    return fn(member_scores, float(lam))
