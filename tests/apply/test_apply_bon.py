"""Best-of-N math against brute-force enumeration of every size-N subset, and the KL / fit formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from warm.apply.best_of_n.estimator import (
    bon_kl,
    default_ns,
    expected_value_at_n,
    fit_gao,
    pairwise_win_probability,
    selection_probabilities,
    win_values_vs_random,
)
from warm.errors import WarmError


def brute_force_pick_values(scores, values, n):
    """Mean of values[pick] over all subsets; a tied top score picks uniformly among the tied candidates."""
    total = []
    for subset in itertools.combinations(range(len(scores)), n):
        top = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == top]
        total.append(np.mean([values[i] for i in tied]))
    return float(np.mean(total))


def brute_force_pairwise(a, b, gold, n):
    """A and B pick from the same subset; a selector's ties go to the later candidate (the documented rule)."""
    wins = []
    for subset in itertools.combinations(range(len(a)), n):
        i = max(subset, key=lambda k: (a[k], k))
        j = max(subset, key=lambda k: (b[k], k))
        wins.append(1.0 if gold[i] > gold[j] else 0.5 if gold[i] == gold[j] else 0.0)
    return float(np.mean(wins))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_expected_value_matches_enumeration(seed, n):
    rng = np.random.default_rng(seed)
    k = 7
    scores = rng.integers(0, 4, size=k).astype(float)  # small integers: plenty of ties
    gold = rng.normal(size=k)
    assert expected_value_at_n(scores, gold, n) == pytest.approx(brute_force_pick_values(scores, gold, n), abs=1e-12)


def test_selection_probabilities_are_a_distribution_and_favour_the_top():
    scores = np.array([0.3, -1.0, 2.0, 0.5, 0.1])
    probs = selection_probabilities(scores, 3)
    assert probs.sum() == pytest.approx(1.0)
    # sorted positions 0..4 get C(i, 2)/C(5, 3): 0, 0, 1/10, 3/10, 6/10
    assert probs[np.argsort(scores)] == pytest.approx([0, 0, 0.1, 0.3, 0.6])
    assert selection_probabilities(scores, 1) == pytest.approx(np.full(5, 0.2))
    assert selection_probabilities(scores, 5) == pytest.approx(np.eye(5)[2])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_pairwise_win_probability_matches_enumeration(seed, n):
    rng = np.random.default_rng(seed)
    k = 6
    a, b = rng.normal(size=k), rng.integers(0, 3, size=k).astype(float)  # B has ties: order breaks them
    gold = rng.integers(0, 3, size=k).astype(float)  # gold ties count half
    assert pairwise_win_probability(a, b, gold, n) == pytest.approx(brute_force_pairwise(a, b, gold, n), abs=1e-12)


def test_pairwise_win_of_a_selector_against_itself_is_one_half():
    rng = np.random.default_rng(0)
    a, gold = rng.normal(size=8), rng.normal(size=8)
    assert pairwise_win_probability(a, a, gold, 3) == pytest.approx(0.5)


def test_win_against_random_counts_ties_half():
    gold = np.array([1.0, 1.0, 0.0, 2.0])
    # candidate 0 beats the 0.0, ties itself and candidate 1, loses to 2.0: (1 + 0.5*2) / 4
    assert win_values_vs_random(gold) == pytest.approx([0.5, 0.5, 0.125, 0.875])
    # N=1 picks a random candidate: the expected win rate against random is exactly one half
    assert expected_value_at_n(np.zeros(4), win_values_vs_random(gold), 1) == pytest.approx(0.5)


def test_kl_formula():
    assert bon_kl(1) == 0.0
    assert bon_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert bon_kl(np.array([4, 16])) == pytest.approx([math.log(4) - 0.75, math.log(16) - 15 / 16])
    with pytest.raises(WarmError, match="N must be >= 1"):
        bon_kl(0)


def test_fit_gao_recovers_alpha_and_beta():
    kl = bon_kl(np.array([1, 2, 4, 8, 16, 32]))
    d = np.sqrt(kl)
    fit = fit_gao(kl, d * (0.3 - 0.05 * d))
    assert fit["alpha"] == pytest.approx(0.3) and fit["beta"] == pytest.approx(0.05) and fit["r2"] == pytest.approx(1.0)


def test_bad_pools_are_refused():
    with pytest.raises(WarmError, match="between 1 and the pool size 3"):
        selection_probabilities(np.zeros(3), 4)
    with pytest.raises(WarmError, match="NaN"):
        selection_probabilities(np.array([0.0, np.nan]), 1)


def test_default_ns_end_at_the_pool_size():
    assert default_ns(46) == [1, 2, 4, 8, 16, 32, 46]
    assert default_ns(8) == [1, 2, 4, 8]
