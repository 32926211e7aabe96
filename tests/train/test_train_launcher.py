"""`warm train`: members start from the same init tensors, training changes them, runs resume."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import write_pairs
from warm.config import InitConfig, TrainConfig
from warm.errors import WarmError
from warm.fileio import read_json
from warm.train.init import build_init
from warm.train import executors
from warm.train.launcher import run_training


@pytest.fixture()
def init_and_data(tiny_backbone_dir, tmp_path):
    init = tmp_path / "init"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(init)), progress=False)
    return init, write_pairs(tmp_path / "pairs.jsonl", n=32)


def _config(init, data, out, **overrides):
    values = dict(init=overrides.pop("inits", (str(init),)), data=str(data), out=str(out), members=2, lr=(1e-3, 5e-4), dropout=(0.0, 0.1),
                  max_steps=3, batch_size=4, max_length=32)
    values.update(overrides)
    return TrainConfig(**values)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_members_share_init_and_training_changes_weights(init_and_data, tmp_path):
    init, data = init_and_data
    # lr = 0: a member is exactly the init (the head is not re-drawn, whatever the member's seed and dropout).
    frozen = run_training(_config(init, data, tmp_path / "frozen", lr=(0.0,)), progress=False)
    assert set(frozen["members"]) == {"m00", "m01"}
    w0 = _weights(init)
    for name in ("m00", "m01"):
        member = _weights(tmp_path / "frozen" / "members" / name)
        assert all(torch.equal(member[k], w0[k]) for k in w0), name
    # lr > 0: every member moves away from the init, and the two members differ.
    run_training(_config(init, data, tmp_path / "run"), progress=False)
    m0, m1 = (_weights(tmp_path / "run" / "members" / n) for n in ("m00", "m01"))
    assert not torch.equal(m0["classifier.weight"], w0["classifier.weight"])
    assert any(not torch.equal(m0[k], m1[k]) for k in w0)
    meta = read_json(tmp_path / "run" / "members" / "m01" / "warm_member.json")
    assert meta["plan_entry"]["dropout"] == 0.1 and meta["metrics"]["steps"] == 3
    assert meta["metrics"]["pairs_per_second"] > 0
    assert meta["init_fingerprint"] == read_json(init / "warm_init.json")["fingerprint"]
    config = read_json(tmp_path / "run" / "members" / "m01" / "config.json")
    assert config["hidden_dropout_prob"] == 0.1
    plan = read_json(tmp_path / "run" / "plan.json")
    assert plan["data"]["n_pairs"] == 32 and len(plan["members"]) == 2


def test_resume_reuses_finished_members_and_retrains_the_interrupted_one(init_and_data, tmp_path, monkeypatch):
    init, data = init_and_data
    out = tmp_path / "run"
    real = executors.train_member
    calls = []

    def crash_on_second(run_dir, plan, member, *args, **kwargs):
        calls.append(member["name"])
        if member["name"] == "m01":
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during m01
        return real(run_dir, plan, member, *args, **kwargs)

    monkeypatch.setattr(executors, "train_member", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_training(_config(init, data, out), progress=False)
    assert (out / "members" / "m00" / "warm_member.json").exists()
    assert not (out / "members" / "m01").exists()
    assert not list((out / "members").glob(".*"))  # no half-written member left behind

    calls.clear()
    monkeypatch.setattr(executors, "train_member", lambda *a, **k: (calls.append(a[2]["name"]), real(*a, **k))[1])
    before = _weights(out / "members" / "m00")
    metrics = run_training(_config(init, data, out), progress=False)
    assert calls == ["m01"] and set(metrics["members"]) == {"m00", "m01"}
    assert all(torch.equal(before[k], v) for k, v in _weights(out / "members" / "m00").items())


def test_changed_plan_is_refused_unless_forced(init_and_data, tmp_path, monkeypatch):
    init, data = init_and_data
    out = tmp_path / "run"
    run_training(_config(init, data, out), progress=False)
    with pytest.raises(WarmError, match=r"plan changed .*m00.learning_rate: 0.001 -> 0.002"):
        run_training(_config(init, data, out, lr=(2e-3, 5e-4)), progress=False)
    calls = []
    real = executors.train_member
    monkeypatch.setattr(executors, "train_member", lambda *a, **k: (calls.append(a[2]["name"]), real(*a, **k))[1])
    run_training(_config(init, data, out, lr=(2e-3, 5e-4), force=True), progress=False)
    assert calls == ["m00"]  # m01's settings did not change: reused


def test_corruption_is_recorded_beside_the_run(init_and_data, tmp_path):
    init, data = init_and_data
    out = tmp_path / "run"
    run_training(_config(init, data, out, members=1, corrupt=0.25, corrupt_seed=3), progress=False)
    record = read_json(out / "data" / "corruption.json")
    assert record["n_corrupted"] == 8 and len(record["indices"]) == 8
    from warm.data.formats import load_preferences

    trained = load_preferences(str(out / "data" / "train.jsonl.gz"))
    assert sum(trained.corrupted) == 8


def test_inits_with_different_tokenizers_are_refused(init_and_data, tmp_path):
    init, data = init_and_data
    other = tmp_path / "other"
    import shutil

    shutil.copytree(init, other)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["zebra"])
    tokenizer.save_pretrained(other)
    with pytest.raises(WarmError, match="tokenizer differs"):
        run_training(_config(init, data, tmp_path / "run", inits=(str(init), str(other))), progress=False)


def test_checkpoints_of_one_run(init_and_data, tmp_path):
    init, data = init_and_data
    out = tmp_path / "run"
    run_training(_config(init, data, out, members=1, max_steps=4, checkpoints=(0.5,)), progress=False)
    member = out / "members" / "m00"
    (checkpoint,) = sorted((member / "checkpoints").iterdir())
    assert checkpoint.name == "step-000002"
    meta = read_json(checkpoint / "warm_member.json")
    assert meta["step"] == 2 and meta["checkpoint_of"] == "m00"
    assert meta["init_fingerprint"] == read_json(member / "warm_member.json")["init_fingerprint"]
    mid, end, start = _weights(checkpoint), _weights(member), _weights(init)
    key = "classifier.weight"
    assert not torch.equal(mid[key], start[key]) and not torch.equal(mid[key], end[key])
    assert read_json(out / "plan.json")["training"]["checkpoints"] == [0.5]
    assert not list((out / "members").glob(".*"))
