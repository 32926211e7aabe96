"""`warm check` on a tiny encoder and a tiny decoder reward model, each trained a few steps by warm and merged:
every path declared compatible gives warm's reward (fp32, within 1e-5), the others are reported as such, and a
compatible path that disagrees makes the command fail."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from warm.check.run import run_check
from warm.cli import app
from warm.models.contract_files import read_contract
from warm.merge.card import usage_snippet
from warm.score.scorer import RewardModelScorer


@pytest.fixture(scope="module")
def models(trained_merges):
    return trained_merges


@pytest.mark.parametrize("family, trl_compatible", [("encoder", False), ("decoder", True)])
def test_every_compatible_path_gives_warms_reward(models, family, trl_compatible):
    model, data = models[family]
    report = run_check(str(model), data=str(data), limit=8, policy=str(models["policy"]), log=lambda _: None)
    statuses = {e["path"]: e["status"] for e in report["paths"]}
    expected = {"warm-reward-function": "compatible", "model-card": "compatible", "pipeline": "compatible",
                "trl-conversational": "compatible" if trl_compatible else "not compatible",
                "trl-text": "not compatible", "rewardbench": "compatible", "serve-openrlhf": "compatible"}
    assert statuses == expected
    for entry in report["paths"]:
        assert entry["n_compared"] == 16
        if entry["status"] == "compatible":
            assert entry["max_abs_diff"] <= 1e-5 and entry["decision_agreement"] == 1.0
        else:
            assert entry["max_abs_diff"] > 1e-4  # the incompatible ones really differ
    assert report["contract"]["add_special_tokens"] is (family == "encoder")  # BERT's [CLS]/[SEP] vs the template's


def test_the_model_card_snippet_is_the_exact_recipe(models):
    model, _ = models["decoder"]
    card = (model / "README.md").read_text()
    contract, _ = read_contract(model)
    snippet = usage_snippet(contract)
    assert snippet in card
    namespace: dict = {}
    exec(snippet.replace("path/to/this/model", str(model)), namespace)  # noqa: S102
    expected = RewardModelScorer(str(model)).score_texts(["How do I boil an egg?"],
                                                         ["Put it in boiling water for 8 minutes."])
    assert namespace["reward"] == pytest.approx(float(expected[0]), abs=1e-6)


def test_cli_fails_when_a_compatible_path_disagrees(models, tmp_path):
    model, data = models["encoder"]
    args = ["check", "--data", str(data), "--limit", "4", "--path", "pipeline", "--path", "model-card"]
    good = CliRunner().invoke(app, [*args, str(model), "--out", str(tmp_path / "report.json")])
    assert good.exit_code == 0, good.output
    assert json.loads((tmp_path / "report.json").read_text())["paths"][0]["status"] == "compatible"
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    config = json.loads((broken / "config.json").read_text())
    del config["problem_type"]  # pipeline then applies a sigmoid to the reward
    (broken / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, [*args, str(broken)])
    assert result.exit_code == 1
    assert "| transformers: pipeline(\"text-classification\") | FAILED |" in result.output
    assert "error: pipeline declared compatible but disagree(s)" in result.output
    with pytest.raises(Exception, match="unknown"):
        run_check(str(model), data=str(data), only=("rewardbank",), log=lambda _: None)


def test_a_pre_contract_model_is_read_as_trained_by_warm_only(models, tmp_path):
    model, data = models["encoder"]
    member = tmp_path / "run" / "members" / "m00"
    shutil.copytree(model.parent / "members" / "m00", member)
    (member / "warm_contract.json").unlink()
    (tmp_path / "run" / "plan.json").write_text(json.dumps({"training": {"max_length": 48}}))
    with pytest.warns(UserWarning, match="made before warm's input contract"):
        report = run_check(str(member), data=str(data), limit=4, only=("warm-reward-function", "pipeline"),
                           log=lambda _: None)
    statuses = {e["path"]: e["status"] for e in report["paths"]}
    assert report["legacy"] and statuses == {"warm-reward-function": "compatible", "pipeline": "not compatible"}
    assert np.isfinite(report["paths"][1]["max_abs_diff"])
