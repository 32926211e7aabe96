"""`warm serve WARM --members`: one forward pass per item unless the members are asked for; then their rewards, std
and WARM minus their mean, per item, in /v1/score and in OpenRLHF's extra_logs."""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_tiny_model_dir
from fastapi.testclient import TestClient

from warm.merge.merge import merge_models
from warm.score.uncertainty import MemberUncertaintyScorer
from warm.serve.app import create_app
from warm.serve.command import serve_command
from warm.serve.scoring import make_score_fn
from warm.serve.settings import ServeSettings

PROMPTS = ["what is a cat", "tell me about fire", "why"]
RESPONSES = ["a cat is a good dog", "fire is hot and bad", "because"]


@pytest.fixture(scope="module")
def warm_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-members")
    members = [make_tiny_model_dir(root / name, seed=seed) for name, seed in (("a", 1), ("b", 2))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny models carry no init fingerprint
        merge_models(members, root / "warm", progress=False)
    return str(root / "warm")


class Counting:
    """Counts the members' forward passes of a MemberUncertaintyScorer."""

    def __init__(self, scorer):
        self.calls, self.inner = [], scorer.ensemble.score_members
        scorer.ensemble.score_members = self

    def __call__(self, prompts, responses, progress=False):
        self.calls.append(len(prompts))
        return self.inner(prompts, responses, progress=progress)


def body(**extra):
    return {"pairs": [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES)], **extra}


def test_members_score_only_when_asked(warm_dir):
    scorer = MemberUncertaintyScorer(warm_dir, max_length=64, batch_size=64)
    offline = scorer.uncertainty(PROMPTS, RESPONSES)
    counting = Counting(scorer)
    with TestClient(create_app(scorer, ServeSettings(spec=warm_dir, members=True))) as client:
        plain = client.post("/v1/score", json=body()).json()
        assert set(plain) == {"rewards"} and counting.calls == []  # one forward pass per item: WARM's
        np.testing.assert_array_equal(np.float32(plain["rewards"]), np.float32(offline.reward))
        full = client.post("/v1/score", json=body(return_members=True)).json()
        assert counting.calls == [3] and full["member_names"] == ["a", "b"]
        np.testing.assert_array_equal(np.float32(full["members"]), np.float32(offline.members))
        np.testing.assert_allclose(full["std"], offline.member_std, rtol=1e-5)
        np.testing.assert_allclose(full["warm_minus_mean"], offline.warm_minus_mean, rtol=1e-4, atol=1e-7)
        # OpenRLHF cannot ask: every /get_reward item gets them, in extra_logs
        reward = client.post("/get_reward", json={"query": [p + r for p, r in zip(PROMPTS, RESPONSES)],
                                                  "prompts": PROMPTS}).json()
        assert counting.calls == [3, 3]
        np.testing.assert_allclose(reward["extra_logs"]["member_std"], offline.member_std, rtol=1e-5)
        np.testing.assert_allclose(reward["extra_logs"]["warm_minus_mean"], offline.warm_minus_mean, rtol=1e-4,
                                   atol=1e-7)
        info = client.get("/v1/info").json()
    assert info["forward_passes_per_item"] == 1 and info["forward_passes_with_members"] == 3
    assert [m["name"] for m in info["members"]] == ["a", "b"] and info["merge"]["weights"] == [0.5, 0.5]


def test_a_micro_batch_mixing_both_kinds_of_request(warm_dir):
    """Items that did not ask get NaN member columns; those that did get exactly their own members' rewards."""
    scorer = MemberUncertaintyScorer(warm_dir, max_length=64, batch_size=64)
    counting = Counting(scorer)
    rows = make_score_fn(scorer)([(PROMPTS[0], RESPONSES[0], False), (PROMPTS[1], RESPONSES[1], True),
                                  (PROMPTS[2], RESPONSES[2], False)])
    assert counting.calls == [1] and np.isnan(rows[[0, 2], 1:]).all()
    np.testing.assert_array_equal(rows[1, 1:], scorer.score_members(PROMPTS[1:2], RESPONSES[1:2])[:, 0])
    np.testing.assert_array_equal(rows[:, 0], scorer.score_texts(PROMPTS, RESPONSES))


def test_cli_flag_and_its_refusals(warm_dir, monkeypatch, tmp_path):
    import uvicorn

    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app))
    result = CliRunner().invoke(serve_command, [warm_dir, "--members", "--max-length", "64"])
    assert result.exit_code == 0, result.output
    assert isinstance(captured["app"].state.scorer, MemberUncertaintyScorer)
    members = captured["app"].state.scorer.ensemble.paths
    result = CliRunner().invoke(serve_command, [",".join(members), "--members"])
    assert result.exit_code == 2 and "is an ensemble, whose members are scored with every item" in result.output
    result = CliRunner().invoke(serve_command, [members[0], "--members"])
    assert result.exit_code == 2 and "no warm_merge.json" in result.output
