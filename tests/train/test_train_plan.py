"""The member plan: exact assignments, determinism, Baklava spread, change detection."""

import numpy as np
import pytest

from warm.config import TrainConfig
from warm.errors import WarmError
from warm.train.plan import assign, make_plan, member_key, plan_differences


def _plan(**overrides):
    values = dict(init=("/i/a",), data="d.jsonl", out="runs/x", members=4, lr=(1e-5, 4e-5, 1e-4), dropout=(0.05, 0.1))
    values.update(overrides)
    config = TrainConfig(**values)
    fingerprints = {"/i/a": "fa", "/i/b": "fb"}
    return make_plan(config, fingerprints, {"source": "d.jsonl", "n_pairs": 10}, {"epochs": 1.0, "batch_size": 8})


def test_round_robin_assignment_is_exact():
    plan = _plan()
    assert [m["learning_rate"] for m in plan["members"]] == [1e-5, 4e-5, 1e-4, 1e-5]
    assert [m["dropout"] for m in plan["members"]] == [0.05, 0.1, 0.05, 0.1]
    assert [m["seed"] for m in plan["members"]] == [0, 1, 2, 3]
    assert [m["name"] for m in plan["members"]] == ["m00", "m01", "m02", "m03"]
    assert {m["init_fingerprint"] for m in plan["members"]} == {"fa"}


def test_random_assignment_is_seeded():
    a, b, c = _plan(assign="random", seed=7), _plan(assign="random", seed=7), _plan(assign="random", seed=8, members=12)
    assert a["members"] == b["members"] and a["plan_hash"] == b["plan_hash"]
    assert {m["learning_rate"] for m in c["members"]} <= {1e-5, 4e-5, 1e-4}
    with pytest.raises(WarmError, match="--assign"):
        assign((1,), 2, "sorted", np.random.default_rng(0))


def test_baklava_spreads_members_over_inits():
    plan = _plan(init=("/i/a", "/i/b"))
    assert [m["init_fingerprint"] for m in plan["members"]] == ["fa", "fb", "fa", "fb"]


def test_plan_hash_ignores_creation_time_and_tracks_settings():
    a, b = _plan(), _plan()
    assert a["plan_hash"] == b["plan_hash"]
    changed = _plan(lr=(2e-5, 4e-5, 1e-4))
    assert changed["plan_hash"] != a["plan_hash"]
    diffs = plan_differences(a, changed)
    assert diffs == ["m00.learning_rate: 1e-05 -> 2e-05", "m03.learning_rate: 1e-05 -> 2e-05"]
    # A member whose own entry did not change keeps its key (and is reused after --force).
    assert member_key(a, a["members"][1]) == member_key(changed, changed["members"][1])
    assert member_key(a, a["members"][0]) != member_key(changed, changed["members"][0])


def test_members_must_be_positive():
    with pytest.raises(WarmError, match="--members 0"):
        _plan(members=0)
