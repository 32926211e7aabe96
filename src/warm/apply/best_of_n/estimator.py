"""Best-of-N math: exact expectations over every size-N subset of a candidate pool. Pure numpy, no models.

Best-of-N (BoN) draws N candidates for a prompt and keeps the one a proxy reward scores highest. With a pool of
K >= N candidates per prompt, one random draw of N would be a noisy estimate; instead every quantity here is the
exact average over all C(K, N) subsets (the unbiased estimator of Nakano et al. 2021, arXiv 2112.09332, App. I,
and Gao et al. 2022, arXiv 2210.10760, Sec. 3.1): sort the pool by proxy score; the i-th lowest (0-based) is
the pick of exactly C(i, N-1) subsets. No library computes this (TRL and the BoN papers' code draw samples).

Ties in a selector's scores: a subset whose top score is shared picks one of the tied candidates at random.
`selection_probabilities` is exact under that rule (by symmetry, the tied candidates share their group's mass).
`pairwise_win_probability` breaks a selector's ties by candidate order instead; real reward models give
float scores where ties are rare, and the docstring of that function says so.

Scale: KL(BoN) = log N - (N - 1) / N (Stiennon et al. 2020; Gao et al. 2022) is the usual x-axis; Gao et al.
fit the gold gain of BoN as d·(α - β·d) with d = sqrt(KL) (`fit_gao`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from warm.errors import WarmError


def bon_kl(n: int | np.ndarray) -> np.ndarray | float:
    """KL(BoN policy || base policy) = log N - (N - 1)/N, in nats (an upper bound, tight for continuous rewards)."""
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(n_arr < 1):
        raise WarmError(f"N must be >= 1, got {n}")
    kl = np.log(n_arr) - (n_arr - 1) / n_arr
    return float(kl) if np.ndim(n) == 0 else kl


def _log_comb(top: np.ndarray, k: int) -> np.ndarray:
    """log C(top, k) elementwise; -inf where top < k (no such subsets)."""
    top = np.asarray(top, dtype=np.float64)
    out = np.full(top.shape, -np.inf)
    ok = top >= k
    out[ok] = gammaln(top[ok] + 1) - gammaln(k + 1) - gammaln(top[ok] - k + 1)
    return out


def _check_pool(scores: np.ndarray, n: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise WarmError(f"a candidate pool must be a non-empty 1-D array of scores, got shape {scores.shape}")
    if not 1 <= n <= scores.size:
        raise WarmError(f"N = {n} must be between 1 and the pool size {scores.size}")
    if np.isnan(scores).any():
        raise WarmError("selector scores contain NaN")
    return scores


def selection_probabilities(scores: np.ndarray, n: int) -> np.ndarray:
    """P(candidate i is the pick of a uniformly random size-n subset), for every candidate of one pool.

    Candidates in sorted positions [a, b) with one tied score are the pick together for C(b, n) - C(a, n)
    subsets and share that mass equally; with distinct scores this is C(i, n-1) / C(K, n) at sorted position i.
    """
    scores = _check_pool(scores, n)
    k = scores.size
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    # Boundaries of runs of equal scores in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], k]
    log_total = _log_comb(np.array(k), n)
    group_mass = np.exp(_log_comb(ends, n) - log_total) - np.exp(_log_comb(starts, n) - log_total)
    probs_sorted = np.repeat(group_mass / (ends - starts), ends - starts)
    probs = np.empty(k)
    probs[order] = probs_sorted
    return probs


def expected_value_at_n(scores: np.ndarray, values: np.ndarray, n: int) -> float:
    """E[values of the pick] over all size-n subsets: e.g. the mean gold reward of best-of-n by `scores`."""
    values = np.asarray(values, dtype=np.float64)
    probs = selection_probabilities(scores, n)
    if values.shape != probs.shape:
        raise WarmError(f"values have shape {values.shape}, the pool has {probs.size} candidates")
    return float(probs @ values)


def win_values_vs_random(gold: np.ndarray) -> np.ndarray:
    """Per candidate: P(its gold beats the gold of a uniformly random candidate of the same pool), ties half.

    The expectation of this over the BoN pick is the win rate of BoN against random selection (N = 1).
    """
    gold = np.asarray(gold, dtype=np.float64)
    greater = (gold[:, None] > gold[None, :]).sum(axis=1)
    equal = (gold[:, None] == gold[None, :]).sum(axis=1)
    return (greater + 0.5 * equal) / gold.size


def pairwise_win_probability(scores_a: np.ndarray, scores_b: np.ndarray, gold: np.ndarray, n: int) -> float:
    """P(gold of A's pick > gold of B's pick) + 0.5·P(equal), both picking from the SAME random size-n subset.

    Exact over all C(K, n) subsets: A picks i and B picks j (i != j) in a subset iff the subset holds i and j,
    A ranks j below i, B ranks i below j, and every other member is below i for A and below j for B; so the
    number of such subsets is C(c_ij, n-2) with c_ij = #{k : a_k < a_i and b_k < b_j} (C(c_ii, n-1) when
    i = j). O(K^2) memory and O(K^3) time per pool: fine for pools of a few hundred candidates.
    Ties within a selector's scores are broken by candidate order (the later candidate ranks higher).
    """
    a = _check_pool(scores_a, n)
    b = _check_pool(scores_b, n)
    gold = np.asarray(gold, dtype=np.float64)
    if not (a.shape == b.shape == gold.shape):
        raise WarmError(f"scores and gold differ in shape: {a.shape}, {b.shape}, {gold.shape}")
    k = a.size
    rank_a = np.argsort(np.argsort(a, kind="stable"), kind="stable")  # distinct ranks: ties broken by order
    rank_b = np.argsort(np.argsort(b, kind="stable"), kind="stable")
    below_a = (rank_a[:, None] < rank_a[None, :]).astype(np.float64)  # [k, i]: k ranks below i for A
    below_b = (rank_b[:, None] < rank_b[None, :]).astype(np.float64)  # [k, j]: k ranks below j for B
    counts = below_a.T @ below_b  # [i, j] = c_ij
    log_total = _log_comb(np.array(k), n)
    possible = (rank_a[None, :] < rank_a[:, None]) & (rank_b[:, None] < rank_b[None, :])  # [i, j]: a_j<a_i, b_i<b_j
    probs = np.where(possible, np.exp(_log_comb(counts, n - 2) - log_total), 0.0) if n >= 2 else np.zeros((k, k))
    np.fill_diagonal(probs, np.exp(_log_comb(np.diag(counts), n - 1) - log_total))
    outcome = np.where(gold[:, None] > gold[None, :], 1.0, np.where(gold[:, None] == gold[None, :], 0.5, 0.0))
    return float((probs * outcome).sum())


def fit_gao(kl: np.ndarray, gain: np.ndarray) -> dict:
    """Least-squares fit of gain = d·(α - β·d), d = sqrt(KL) (Gao et al. 2022, Eq. 1 for BoN); {"alpha", "beta", "r2"}.

    β > 0 means the gold gain bends down as the proxy is optimised harder: over-optimisation. The peak of the
    fitted curve is at d* = α / (2β).
    """
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    gain = np.asarray(gain, dtype=np.float64)
    if d.shape != gain.shape or d.size < 2:
        raise WarmError(f"need at least two (KL, gain) points of one shape, got {d.shape} and {gain.shape}")
    design = np.stack([d, -d * d], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, gain, rcond=None)
    fitted = design @ np.array([alpha, beta])
    residual = float(((gain - fitted) ** 2).sum())
    total = float(((gain - gain.mean()) ** 2).sum())
    return {"alpha": float(alpha), "beta": float(beta), "r2": 1.0 - residual / total if total > 0 else math.nan}


def default_ns(pool_size: int) -> list[int]:
    """1, 2, 4, ... up to the pool size, and the pool size itself."""
    ns, n = [], 1
    while n < pool_size:
        ns.append(n)
        n *= 2
    return ns + [pool_size]
