"""Fuzzing the reward server's request bodies: any bytes or JSON sent to /v1/score or /get_reward gets 200 with one
reward per item, or a 4xx whose JSON names the problem in one line; never a 500, and the server keeps serving."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st

from warm.score.scorer import RewardModelScorer
from warm.serve.app import create_app
from warm.serve.settings import ServeSettings

TEXT = st.text(max_size=40)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)
PAIR = st.fixed_dictionaries({"prompt": TEXT, "response": TEXT})
SCORE_BODY = st.one_of(
    st.fixed_dictionaries({"pairs": st.lists(PAIR, max_size=5)}, optional={"return_members": st.booleans()}),
    st.dictionaries(st.sampled_from(["pairs", "return_members", "extra"]), JSON, max_size=3), JSON)
REWARD_BODY = st.one_of(
    st.fixed_dictionaries({"query": st.lists(TEXT, max_size=5)},
                          optional={"prompts": st.lists(TEXT, max_size=5), "labels": JSON}),
    st.dictionaries(st.sampled_from(["query", "prompts", "labels"]), JSON, max_size=3), JSON)


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    scorer = RewardModelScorer(str(tiny_model_dir), batch_size=8)
    settings = ServeSettings(max_batch=8, max_wait_ms=1.0, max_items=4, max_chars=60, max_body_bytes=4096)
    with TestClient(create_app(scorer, settings)) as test_client:
        yield test_client


def check(reply, n_items: int | None) -> None:
    assert reply.status_code != 500 and reply.status_code in (200, 400, 413, 422), (reply.status_code, reply.text)
    payload = reply.json()
    if reply.status_code == 200:
        assert n_items is not None and len(payload["rewards"]) == n_items
    else:
        assert isinstance(payload["detail"], str) and "\n" not in payload["detail"]


def items(body, key: str) -> int | None:
    return len(body[key]) if isinstance(body, dict) and isinstance(body.get(key), list) else None


@examples(40)
@given(body=SCORE_BODY)
def test_score_bodies(client, body):
    check(client.post("/v1/score", content=json.dumps(body)), items(body, "pairs"))


@examples(40)
@given(body=REWARD_BODY)
def test_reward_bodies(client, body):
    check(client.post("/get_reward", content=json.dumps(body)), items(body, "query"))


@examples(40)
@given(raw=st.binary(max_size=300), path=st.sampled_from(["/v1/score", "/get_reward"]))
def test_raw_bytes(client, raw, path):
    check(client.post(path, content=raw, headers={"content-type": "application/json"}), None)
    assert client.get("/health").json()["status"] == "ok"
