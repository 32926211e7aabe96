"""Scorer specs: every form parses to the right scorer, and every malformed one fails naming what is wrong."""

import pytest
from conftest import make_tiny_model_dir

from warm.errors import WarmError
from warm.score.scorer import EnsembleScorer, RewardModelScorer
from warm.score.spec import describe_spec, parse_scorer_spec


def test_describe_forms():
    assert describe_spec("runs/x/warm") == {"kind": "model", "members": ["runs/x/warm"], "reduction": None, "lam": None}
    assert describe_spec("a,b") == {"kind": "ensemble", "members": ["a", "b"], "reduction": "mean", "lam": None}
    assert describe_spec("min:a,b")["reduction"] == "min"
    assert describe_spec("mean_minus_std:a,b")["lam"] == 1.0
    assert describe_spec("mean_minus_std=0.5:a, b") == {
        "kind": "ensemble", "members": ["a", "b"], "reduction": "mean_minus_std", "lam": 0.5}
    assert describe_spec("mean:a") == {"kind": "ensemble", "members": ["a"], "reduction": "mean", "lam": None}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty scorer spec"),
        ("median:a,b", "unknown reduction 'median'"),
        ("mean=2:a,b", "only mean_minus_std takes a lambda"),
        ("mean_minus_std=x:a,b", "not a number"),
        ("mean_minus_std=nan:a,b", "finite"),
        ("a,,b", "empty member"),
        ("min:", "empty member"),
    ],
)
def test_describe_errors(spec, message):
    with pytest.raises(WarmError, match=message):
        describe_spec(spec)


def test_existing_path_with_separators_is_one_model(tmp_path):
    odd = tmp_path / "mean:a,b"
    odd.mkdir()
    assert describe_spec(str(odd))["kind"] == "model"
    colon = tmp_path / "min:x"
    colon.mkdir()
    # a first member that exists is never read as a reduction, even if it contains ':'
    assert describe_spec(f"{colon},other")["members"] == [str(colon), "other"]
    # nor is a path-like prefix
    assert describe_spec("/no/such:dir,b")["members"] == ["/no/such:dir", "b"]


def test_parse_builds_scorers(tmp_path):
    a, b = str(make_tiny_model_dir(tmp_path / "a", seed=1)), str(make_tiny_model_dir(tmp_path / "b", seed=2))
    single = parse_scorer_spec(a, max_length=32)
    assert isinstance(single, RewardModelScorer) and single.max_length == 32
    ens = parse_scorer_spec(f"mean_minus_std=0.25:{a},{b}", batch_size=4)
    assert isinstance(ens, EnsembleScorer) and (ens.reduction, ens.lam, ens.name) == ("mean_minus_std", 0.25, "mean_minus_std=0.25:a,b")
    assert parse_scorer_spec(f"{a},{b}").reduction == "mean"
    with pytest.raises(WarmError, match="'.*missing' is not a model directory"):
        parse_scorer_spec(f"{a},{tmp_path / 'missing'}")
    with pytest.raises(WarmError, match="not a model directory"):
        parse_scorer_spec(str(tmp_path / "missing"))
