"""Pairwise accuracy, bootstrap intervals and the length baseline on constructed values with known answers."""

import numpy as np
import pytest

from warm.errors import WarmError
from warm.metrics import (
    accuracy_summary,
    bootstrap_ci,
    length_adversarial_mask,
    length_baseline_correct,
    paired_bootstrap_diff,
    pairwise_correct,
)


def test_pairwise_correct_with_ties_half():
    chosen = np.array([2.0, 1.0, 0.5, -3.0])
    rejected = np.array([1.0, 2.0, 0.5, -4.0])
    np.testing.assert_array_equal(pairwise_correct(chosen, rejected), [1.0, 0.0, 0.5, 1.0])
    assert accuracy_summary(pairwise_correct(chosen, rejected), n_boot=50)["accuracy"] == 0.625


def test_pairwise_correct_rejects_nan_and_shape_mismatch():
    with pytest.raises(WarmError, match="NaN"):
        pairwise_correct(np.array([np.nan]), np.array([0.0]))
    with pytest.raises(WarmError, match="length"):
        pairwise_correct(np.zeros(2), np.zeros(3))


def test_constant_reward_scores_one_half():
    assert accuracy_summary(pairwise_correct(np.zeros(7), np.zeros(7)), n_boot=20)["accuracy"] == 0.5


def test_bootstrap_ci_contains_mean_narrows_with_n_and_is_deterministic():
    rng = np.random.default_rng(1)
    small = (rng.random(100) < 0.7).astype(float)
    large = (rng.random(10_000) < 0.7).astype(float)
    lo_s, hi_s = bootstrap_ci(small, n_boot=500, seed=3)
    lo_l, hi_l = bootstrap_ci(large, n_boot=500, seed=3)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # width ~ 1/sqrt(n): 10x narrower
    assert bootstrap_ci(small, n_boot=500, seed=3) == (lo_s, hi_s)
    assert bootstrap_ci(small, n_boot=500, seed=4) != (lo_s, hi_s)


def test_bootstrap_chunking_matches_a_single_draw(monkeypatch):
    import warm.metrics as metrics

    values = np.random.default_rng(0).random(50)
    whole = bootstrap_ci(values, n_boot=300, seed=7)
    rng = np.random.default_rng(7)  # the same stream drawn in one go
    means = values[rng.integers(0, 50, size=(300, 50))].mean(axis=1)
    assert whole == tuple(np.quantile(means, [0.025, 0.975]))
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 50 * 7)  # 7 rows per chunk
    chunked = bootstrap_ci(values, n_boot=300, seed=7)
    assert chunked == whole  # the same resamples, drawn in 43 chunks instead of one


def test_bootstrap_edge_cases():
    assert bootstrap_ci(np.array([0.25]), n_boot=10) == (0.25, 0.25)
    with pytest.raises(WarmError):
        bootstrap_ci(np.array([]))
    assert accuracy_summary(np.array([])) == {"accuracy": None, "lo": None, "hi": None, "n": 0}


def test_paired_diff_of_identical_arrays_is_exactly_zero():
    values = np.random.default_rng(0).random(200)
    assert paired_bootstrap_diff(values, values, n_boot=200, seed=0) == {"diff": 0.0, "lo": 0.0, "hi": 0.0}


def test_paired_diff_is_tighter_than_unpaired_for_correlated_scorers():
    rng = np.random.default_rng(0)
    a = (rng.random(2000) < 0.7).astype(float)
    b = a.copy()
    flip = rng.random(2000) < 0.05
    b[flip] = 1 - b[flip]
    d = paired_bootstrap_diff(a, b, n_boot=500, seed=0)
    assert d["diff"] == pytest.approx(a.mean() - b.mean())
    assert d["lo"] <= d["diff"] <= d["hi"]
    lo_a, hi_a = bootstrap_ci(a, n_boot=500)
    assert d["hi"] - d["lo"] < (hi_a - lo_a)


def test_length_baseline_and_adversarial_mask():
    chosen = ["long answer", "ab", "same", "x"]
    rejected = ["short", "abc", "four", "yy"]
    np.testing.assert_array_equal(length_baseline_correct(chosen, rejected), [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(length_adversarial_mask(chosen, rejected), [False, True, False, True])
