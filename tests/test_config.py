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


def test_a_missing_required_option_is_clicks_one_line_error_not_none():
    """Every command's options come from click_options: a required field left out must stop at click's parser
    (exit 2, "Missing option"), never reach the command as None (`warm rl` without --kl-coef once crashed with a
    TypeError in its config check)."""
    from click.testing import CliRunner

    from warm.cli import app

    result = CliRunner().invoke(app, ["rl", "--reward", "x", "--prompts", "p.jsonl", "--steps", "1", "--out", "o"])
    assert result.exit_code == 2, result.output
    assert "Missing option '--kl-coef'" in result.output
    result = CliRunner().invoke(app, ["train", "--init", "a", "--out", "o"])
    assert result.exit_code == 2 and "Missing option '--data'" in result.output
