"""Ensemble reductions on a hand-made matrix: exact values, and the registry's error for unknown names."""

import numpy as np
import pytest

from warm.errors import WarmError
from warm.score.reductions import REDUCTIONS, reduce_scores

# 2 members x 3 samples
SCORES = np.array([[1.0, 2.0, -1.0], [3.0, 2.0, 1.0]])


def test_mean():
    np.testing.assert_array_equal(reduce_scores(SCORES, "mean"), [2.0, 2.0, 0.0])


def test_min():
    np.testing.assert_array_equal(reduce_scores(SCORES, "min"), [1.0, 2.0, -1.0])


def test_mean_minus_std_population_std():
    # population std (ddof=0) of (1, 3) is 1, of (2, 2) is 0, of (-1, 1) is 1
    np.testing.assert_array_equal(reduce_scores(SCORES, "mean_minus_std"), [1.0, 2.0, -1.0])
    np.testing.assert_array_equal(reduce_scores(SCORES, "mean_minus_std", lam=0.5), [1.5, 2.0, -0.5])
    np.testing.assert_array_equal(reduce_scores(SCORES, "mean_minus_std", lam=0.0), reduce_scores(SCORES, "mean"))


def test_single_member_is_identity_for_every_reduction():
    one = SCORES[:1]
    for name in REDUCTIONS:
        np.testing.assert_array_equal(reduce_scores(one, name), one[0])


def test_unknown_reduction_lists_valid_ones():
    with pytest.raises(WarmError, match="median.*mean, min, mean_minus_std"):
        reduce_scores(SCORES, "median")


def test_bad_shape():
    with pytest.raises(WarmError, match="shape"):
        reduce_scores(np.zeros(3), "mean")
