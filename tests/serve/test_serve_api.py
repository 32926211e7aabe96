"""Every endpoint and error path through FastAPI's TestClient, on tiny BERT reward models.

Scores must be the offline scorer's: the same texts through /v1/score or /get_reward give exactly the numbers of
`Scorer.score_texts` when they are scored as one micro-batch (the same batch, the same kernels).
"""

import json
import warnings

import numpy as np
import pytest
from conftest import make_tiny_model_dir
from fastapi.testclient import TestClient

from warm.errors import WarmError
from warm.merge.merge import merge_models
from warm.score.scorer import EnsembleScorer, RewardModelScorer
from warm.serve.app import create_app
from warm.serve.settings import ServeSettings

PROMPTS = ["what is a cat", "tell me about fire", "why", "write python code please", "help", "where is the dog"]
RESPONSES = ["a cat is a good dog", "fire is hot and bad", "because", "sure: print(1)", "no", "here"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-api")
    return str(make_tiny_model_dir(root / "a", seed=1)), str(make_tiny_model_dir(root / "b", seed=2))


@pytest.fixture(scope="module")
def single(models):
    return RewardModelScorer(models[0], max_length=64, batch_size=64)


@pytest.fixture(scope="module")
def ensemble(models):
    return EnsembleScorer(list(models), reduction="mean_minus_std", lam=0.5, max_length=64, batch_size=64)


def client(scorer, **settings) -> TestClient:
    return TestClient(create_app(scorer, ServeSettings(**settings)))


def pairs_body(prompts=PROMPTS, responses=RESPONSES, **extra) -> dict:
    return {"pairs": [{"prompt": p, "response": r} for p, r in zip(prompts, responses)], **extra}


def as_f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def test_v1_score_equals_the_offline_scorer(single):
    offline = single.score_texts(PROMPTS, RESPONSES)
    with client(single, spec="a") as c:
        reply = c.post("/v1/score", json=pairs_body())
        assert reply.status_code == 200
        assert set(reply.json()) == {"rewards"}
        np.testing.assert_array_equal(as_f32(reply.json()["rewards"]), offline)
        # One model is one member: its own row, and no disagreement (WARM's members live inside its weights).
        full = c.post("/v1/score", json=pairs_body(return_members=True)).json()
        assert full["member_names"] == ["a"]
        np.testing.assert_array_equal(as_f32(full["members"]), offline[None])
        assert full["std"] == [0.0] * len(PROMPTS)


def test_get_reward_splits_queries_at_their_prompts(single):
    queries = [p + " " + r for p, r in zip(PROMPTS, RESPONSES)]
    with client(single) as c:
        reply = c.post("/get_reward", json={"query": queries, "prompts": PROMPTS, "labels": [None] * 6, "x": 1})
        assert reply.status_code == 200
        out = reply.json()
        assert out["rewards"] == out["scores"] and out["extra_logs"] == {"prompt_split": [1.0] * 6}
        split = single.score_texts(PROMPTS, [" " + r for r in RESPONSES])
        np.testing.assert_array_equal(as_f32(out["rewards"]), split)
        # Without prompts, or with a prompt the query does not start with: the whole query, empty prompt.
        whole = single.score_texts([""] * 6, queries)
        no_prompts = c.post("/get_reward", json={"query": queries}).json()
        np.testing.assert_array_equal(as_f32(no_prompts["rewards"]), whole)
        assert no_prompts["extra_logs"] == {}
        mixed = c.post("/get_reward", json={"query": queries[:2], "prompts": [PROMPTS[0], "not a prefix"]}).json()
        np.testing.assert_allclose(as_f32(mixed["rewards"]), [split[0], whole[1]], atol=1e-5)
        assert mixed["extra_logs"]["prompt_split"] == [1.0, 0.0]
        assert not np.isclose(split[0], whole[0], atol=1e-7)  # the split does change the reward


def test_ensemble_returns_members_and_their_disagreement(ensemble):
    offline = ensemble.score_texts(PROMPTS, RESPONSES)
    members = np.stack([m.score_texts(PROMPTS, RESPONSES) for m in ensemble.members])
    with client(ensemble) as c:
        out = c.post("/v1/score", json=pairs_body(return_members=True)).json()
        np.testing.assert_array_equal(as_f32(out["rewards"]), offline)
        assert out["member_names"] == ["a", "b"]
        np.testing.assert_array_equal(as_f32(out["members"]), members)  # shape M x N
        np.testing.assert_allclose(out["std"], members.std(axis=0), rtol=1e-5)
        np.testing.assert_allclose(out["rewards"], members.mean(0) - 0.5 * members.std(0), rtol=1e-5, atol=1e-7)
        reward = c.post("/get_reward", json={"query": RESPONSES}).json()
        np.testing.assert_allclose(reward["extra_logs"]["member_std"],
                                   np.stack([m.score_texts([""] * 6, RESPONSES) for m in ensemble.members]).std(0),
                                   rtol=1e-5)


def test_health_and_info(models, ensemble, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny models carry no init fingerprint: merge warns, as it should
        merge_models(list(models), tmp_path / "warm", progress=False)
    warm = RewardModelScorer(str(tmp_path / "warm"), max_length=64)
    with client(warm, spec=str(tmp_path / "warm"), max_batch=16) as c:
        health = c.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        info = c.get("/v1/info").json()
    assert info["spec"] == str(tmp_path / "warm") and info["kind"] == "model" and info["reduction"] is None
    assert info["forward_passes_per_item"] == 1 and info["max_length"] == 64 and info["max_batch"] == 16
    assert info["precision"] == "fp32" and info["device"] == "cpu" and info["auth"] is False
    assert info["warm_version"] and info["max_items"] == 1024 and info["max_chars"] == 100_000
    merge = info["members"][0]["merge"]
    assert merge["method"] == "linear" and merge["weights"] == [0.5, 0.5] and len(merge["members"]) == 2
    with client(ensemble) as c:
        info = c.get("/v1/info").json()
    assert info["kind"] == "ensemble" and info["reduction"] == "mean_minus_std" and info["lam"] == 0.5
    assert [m["name"] for m in info["members"]] == ["a", "b"] and info["forward_passes_per_item"] == 2
    assert all(m["merge"] is None for m in info["members"])


@pytest.mark.parametrize("path, body, field, words", [
    ("/v1/score", b"{not json", "body", "Invalid JSON"),
    ("/v1/score", b"[1, 2]", "body", "object"),
    ("/v1/score", {"pairs": "text"}, "pairs", "array"),
    ("/v1/score", {"pairs": [{"prompt": "a"}]}, "pairs[0].response", "required"),
    ("/v1/score", {"pairs": [{"prompt": "a", "response": 3}]}, "pairs[0].response", "string"),
    ("/v1/score", {"pairs": [{"prompt": "a", "response": "b"}], "return_members": "yes"}, "return_members", "bool"),
    ("/v1/score", {"pairs": [{"prompt": "a", "response": "b"}], "retrun_members": True}, "retrun_members", "Extra"),
    ("/v1/score", {"pairs": []}, "pairs", "must not be empty"),
    ("/get_reward", {"prompts": ["a"]}, "query", "required"),
    ("/get_reward", {"query": ["a", 7]}, "query[1]", "string"),
    ("/get_reward", {"query": []}, "query", "must not be empty"),
    ("/get_reward", {"query": ["a", "b"], "prompts": ["a"]}, "prompts", "1 items, but query has 2"),
])
def test_malformed_bodies_are_422_naming_the_field(single, path, body, field, words):
    with client(single) as c:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = c.post(path, content=content, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field and words in reply.json()["detail"]


def test_limits_are_413_and_say_the_limit(single):
    with client(single, max_items=3, max_chars=20, max_body_bytes=400) as c:
        too_many = c.post("/get_reward", json={"query": ["a"] * 4})
        assert too_many.status_code == 413 and "4 items, the limit is 3" in too_many.json()["detail"]
        too_long = c.post("/v1/score", json=pairs_body(["a", "b" * 10], ["ok", "c" * 11]))
        assert too_long.status_code == 413 and too_long.json()["field"] == "pairs[1]"
        assert "21 characters, the limit is 20" in too_long.json()["detail"]
        big = c.post("/get_reward", json={"query": ["a"], "padding": "x" * 500})
        assert big.status_code == 413 and "limit is 400 bytes" in big.json()["detail"]
        # Streamed without a Content-Length (chunked): refused once it passes the limit.
        chunks = iter([b'{"query": ["a"], "padding": "', b"x" * 300, b"x" * 300, b'"}'])
        streamed = c.post("/get_reward", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "400 bytes" in streamed.json()["detail"]
        assert c.post("/get_reward", json={"query": ["a", "b" * 20]}).status_code == 200  # at the limits: fine


def test_auth_on_and_off(single):
    body = {"query": ["hello"]}
    with client(single, api_key="s3cret") as c:
        missing = c.post("/get_reward", json=body)
        assert missing.status_code == 401 and "missing API key" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"
        assert c.post("/get_reward", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/get_reward", json=body, headers={"X-API-Key": "s3cre"}).status_code == 401
        assert c.post("/get_reward", json=body, headers={"Authorization": "Basic s3cret"}).status_code == 401
        assert c.post("/get_reward", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/v1/score", json=pairs_body(), headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/info").status_code == 401
        assert c.get("/v1/info", headers={"X-API-Key": "s3cret"}).json()["auth"] is True
        assert c.get("/health").status_code == 200  # probes need no key
        for page in ("/openapi.json", "/docs", "/redoc"):  # the API's description answers only with the key
            assert c.get(page).status_code in (401, 404), page
        assert c.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()["info"]["title"] == "warm reward server"
        assert c.get("/docs", headers={"X-API-Key": "s3cret"}).status_code == 200
    with client(single) as c:
        assert c.post("/get_reward", json=body).status_code == 200
        assert c.post("/get_reward", json=body, headers={"Authorization": "Bearer anything"}).status_code == 200
        assert c.get("/openapi.json").status_code == 200 and "/get_reward" in c.get("/openapi.json").json()["paths"]
    with pytest.raises(WarmError, match="starts or ends with whitespace"):
        ServeSettings(api_key=" s3cret ")


def test_scorer_failure_is_500_then_the_server_keeps_serving(models):
    scorer = RewardModelScorer(models[1], max_length=64)
    real = scorer.score_sequences
    failures = iter([RuntimeError("CUDA out of memory (simulated)")])

    def flaky(seqs, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(seqs, **kwargs)

    scorer.score_sequences = flaky
    with client(scorer) as c:
        failed = c.post("/v1/score", json=pairs_body())
        assert failed.status_code == 500
        assert failed.json()["detail"] == "scoring failed: RuntimeError: CUDA out of memory (simulated)"
        again = c.post("/v1/score", json=pairs_body())
        assert again.status_code == 200
        np.testing.assert_array_equal(as_f32(again.json()["rewards"]), real_scores(scorer, real))
        health = c.get("/health").json()
        assert health["failures"] == 1 and health["status"] == "ok"
        assert c.get("/nowhere").status_code == 404


def real_scores(scorer, real):
    return real(scorer.encoder.encode_many(PROMPTS, RESPONSES)[0])
