"""The members' disagreement next to a WARM reward (warm.score.uncertainty), on tiny BERT members merged by warm."""

import json
import shutil
import warnings

import numpy as np
import pytest
from conftest import make_tiny_model_dir

from warm.data.formats import PreferenceData
from warm.errors import WarmError
from warm.merge.merge import merge_models
from warm.score.scorer import EnsembleScorer, RewardModelScorer
from warm.score.uncertainty import (
    MemberUncertaintyScorer, Uncertainty, calibrate_disagreement, members_scorer, merge_members,
)

PROMPTS = ["what is a cat", "tell me about fire", "why", "write python code please"]
RESPONSES = ["a cat is a good dog", "fire is hot and bad", "because", "sure: print(1)"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """A WARM merge of three tiny members with unequal weights (a soup's, say)."""
    root = tmp_path_factory.mktemp("uncertainty")
    members = [str(make_tiny_model_dir(root / f"m{i}", seed=i + 1)) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny models carry no init fingerprint
        merge_models(members, root / "warm", weights=[0.5, 0.25, 0.25], progress=False)
    return root, members


def test_warm_reward_alone_until_the_members_are_asked(merged):
    root, members = merged
    scorer = MemberUncertaintyScorer(str(root / "warm"), max_length=64)
    warm = RewardModelScorer(str(root / "warm"), max_length=64).score_texts(PROMPTS, RESPONSES)
    np.testing.assert_array_equal(scorer.score_texts(PROMPTS, RESPONSES), warm)  # the served reward: WARM's
    rows = np.stack([RewardModelScorer(m, max_length=64).score_texts(PROMPTS, RESPONSES) for m in members])
    np.testing.assert_array_equal(scorer.score_members(PROMPTS, RESPONSES), rows)
    out = scorer.uncertainty(PROMPTS, RESPONSES)
    weights = np.array([0.5, 0.25, 0.25])
    mean = weights @ rows
    np.testing.assert_allclose(out.member_std, np.sqrt(weights @ (rows - mean) ** 2), rtol=1e-6)
    np.testing.assert_allclose(out.warm_minus_mean, warm - mean, rtol=1e-5, atol=1e-7)
    assert (out.member_std > 0).all() and set(out.to_json()) == {"reward", "member_std", "warm_minus_mean", "members"}
    # equal weights: the population std of warm.score.reductions
    equal = Uncertainty(np.zeros(4), rows)
    np.testing.assert_allclose(equal.member_std, rows.std(axis=0), rtol=1e-12)


def test_members_of_a_spec(merged):
    root, members = merged
    assert merge_members(str(root / "warm")) == (members, [0.5, 0.25, 0.25])
    of_merge = members_scorer(str(root / "warm"))  # a WARM merge: its warm_merge.json, weights included
    assert of_merge.paths == members and of_merge.weights.tolist() == [0.5, 0.25, 0.25]
    of_ensemble = members_scorer(f"{members[0]},{members[1]}")  # an ensemble: its own, equal
    assert of_ensemble.paths == members[:2] and of_ensemble.weights is None
    with pytest.raises(WarmError, match=r"m0: no warm_merge\.json, so no members"):
        members_scorer(members[0])


def test_calibration_is_a_quantile_of_the_std_on_held_out_pairs(merged):
    root, members = merged
    ensemble = EnsembleScorer(members[:2], max_length=64)
    data = PreferenceData("held-out", PROMPTS, RESPONSES, ["no", "no", "no", "no"])
    rows = ensemble.score_members(PROMPTS * 2, RESPONSES + ["no"] * 4)
    assert calibrate_disagreement(ensemble, data, 0.9) == pytest.approx(np.quantile(rows.std(axis=0), 0.9))
    with pytest.raises(WarmError, match="one member cannot disagree"):
        calibrate_disagreement(EnsembleScorer(members[:1], max_length=64), data, 0.9)


def test_broken_records_name_the_file_and_field(merged, tmp_path):
    root, members = merged
    copy = tmp_path / "warm"
    shutil.copytree(root / "warm", copy)
    record = json.loads((copy / "warm_merge.json").read_text())
    (copy / "warm_merge.json").write_text(json.dumps({**record, "members": [members[0], str(tmp_path / "gone")]}))
    with pytest.raises(WarmError, match=r"warm_merge\.json: members\[1\] .*gone is not a directory"):
        MemberUncertaintyScorer(str(copy))
    assert MemberUncertaintyScorer(str(copy), members=members[:2], max_length=64).weights is None  # moved: named
    (copy / "warm_merge.json").write_text(json.dumps({**record, "members": "m0"}))
    with pytest.raises(WarmError, match="field 'members' is not a non-empty list"):
        merge_members(str(copy))
