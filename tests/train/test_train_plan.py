"""The member plan: exact assignments, determinism, Baklava spread, change detection."""

import numpy as np
import pytest

from warm.config import TrainConfig
from warm.errors import WarmError
from warm.train.plan import TrainingSettings, assign, make_plan, member_key, plan_differences


def _plan(**overrides):
    values = dict(init=("/i/a",), data="d.jsonl", out="runs/x", members=4, lr=(1e-5, 4e-5, 1e-4), dropout=(0.05, 0.1))
    values.update(overrides)
    config = TrainConfig(**values)
    fingerprints = {"/i/a": "fa", "/i/b": "fb"}
    training = TrainingSettings.from_config(config, {"format": 1, "max_length": 160}, "fp32", None)
    return make_plan(config, fingerprints, {"source": "d.jsonl", "n_pairs": 10}, training)


def test_training_settings_round_trip_through_the_plan_and_leave_unused_sections_out():
    plan = _plan(checkpoints=(0.5, 0.25))
    training = TrainingSettings.from_plan(plan["training"])
    assert training.checkpoints == (0.25, 0.5) and training.to_plan() == plan["training"]
    assert "lora" not in plan["training"] and "checkpoints" not in _plan()["training"]
    fit = training.fit_settings(plan["members"][1])
    assert (fit.learning_rate, fit.seed, fit.batch_size, fit.precision) == (4e-5, 1, 16, "fp32")
    with pytest.raises(WarmError, match="--checkpoints 1.5"):
        _plan(checkpoints=(1.5,))


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
