"""Configs: unknown keys fail loudly; lists become tuples; CLI flags parse comma lists."""

import pytest

from warm.config import TrainConfig, from_dict, to_dict
from warm.errors import WarmError


def test_unknown_keys_are_refused():
    with pytest.raises(WarmError, match=r"exp.yaml: unknown key\(s\) learning_rate for TrainConfig"):
        from_dict(TrainConfig, {"init": ["a"], "data": "d", "out": "o", "learning_rate": 1e-5}, "exp.yaml")


def test_round_trip_and_tuples():
    config = from_dict(TrainConfig, {"init": ["a", "b"], "data": "d", "out": "o", "lr": [1e-5, 2e-5]})
    assert config.init == ("a", "b") and config.lr == (1e-5, 2e-5)
    assert from_dict(TrainConfig, to_dict(config)) == config


def test_missing_required_key():
    with pytest.raises(WarmError, match="data"):
        from_dict(TrainConfig, {"init": ["a"], "out": "o"})
