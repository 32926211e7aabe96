"""Pointwise reward regression (the RL benchmark's control reward) on a tiny model and constructed targets."""

import json

import numpy as np
import pytest

from warm.errors import WarmError
from warm.train.regress import RegressSettings, fit_pointwise_reward, standardise
from warm.rundir import REGRESS_FILE

GOOD = ["good", "great", "correct", "helpful", "sure", "yes"]
BAD = ["bad", "terrible", "wrong", "harmful", "sorry", "no"]


def _texts(rng, n):
    prompts, responses, targets = [], [], []
    for i in range(n):
        good = i % 2 == 0
        words = rng.choice(GOOD if good else BAD, size=3).tolist() + rng.choice(["the", "it", "is", "a"], size=2).tolist()
        prompts.append(str(rng.choice(["tell me about fire", "explain water", "what is a cat"])))
        responses.append(" ".join(rng.permutation(words)))
        targets.append(2.0 + rng.normal(0, 0.1) if good else -2.0 + rng.normal(0, 0.1))
    return prompts, responses, targets


def test_standardise_exact_and_errors():
    z, mean, scale = standardise([1.0, 3.0])
    assert (mean, scale) == (2.0, 1.0) and z.tolist() == [-1.0, 1.0]
    with pytest.raises(WarmError, match=r"targets\[1\] is nan"):
        standardise([0.0, float("nan")])
    with pytest.raises(WarmError, match="all 3 targets equal 5.0"):
        standardise([5.0, 5.0, 5.0])


def test_regressor_learns_the_targets_and_saves_a_standard_reward_model(tiny_model_dir, tmp_path, one_thread):
    from warm.score.scorer import RewardModelScorer

    rng = np.random.default_rng(0)
    prompts, responses, targets = _texts(rng, 96)
    out = tmp_path / "control"
    meta = fit_pointwise_reward(tiny_model_dir, prompts, responses, targets, out,
                                RegressSettings(learning_rate=3e-3, batch_size=8, epochs=4, max_length=32),
                                progress=False)
    saved = json.loads((out / REGRESS_FILE).read_text())
    assert saved["n_examples"] == 96 and meta["target_mean"] == pytest.approx(float(np.mean(targets)))
    assert saved["target_scale"] == pytest.approx(float(np.std(targets)))
    assert saved["log_history"][-1]["loss"] < saved["log_history"][0]["loss"]
    # held-out texts: every good answer scores above every bad one, on the standardised scale (targets ±1)
    test_prompts, test_responses, test_targets = _texts(np.random.default_rng(1), 20)
    scores = RewardModelScorer(str(out), max_length=32).score_texts(test_prompts, test_responses)
    good = np.asarray(test_targets) > 0
    assert scores[good].min() > scores[~good].max()
    assert scores[good].mean() > 0.25 and scores[~good].mean() < -0.25


def test_regressor_bad_input_writes_nothing(tiny_model_dir, tmp_path):
    out = tmp_path / "control"
    with pytest.raises(WarmError, match="prompts, responses and targets differ in length: 2, 2, 1"):
        fit_pointwise_reward(tiny_model_dir, ["a", "b"], ["c", "d"], [1.0], out)
    with pytest.raises(WarmError, match=r"targets\[0\] is inf"):
        fit_pointwise_reward(tiny_model_dir, ["a", "b"], ["c", "d"], [float("inf"), 1.0], out)
    assert not out.exists() and not list(tmp_path.iterdir())
    out.mkdir()
    with pytest.raises(WarmError, match="already exists"):
        fit_pointwise_reward(tiny_model_dir, ["a", "b"], ["c", "d"], [0.0, 1.0], out)
