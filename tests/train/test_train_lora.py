"""`warm train --lora-r`: members are PEFT adapters with their own head, recorded in the plan, mergeable."""

from __future__ import annotations

import pytest

from warm.data.contract import InputContract
import torch
from safetensors.torch import load_file

import peft  # noqa: F401,E402 - a required dependency: a broken install fails here, not skips

from conftest import write_pairs  # noqa: E402
from warm.config import InitConfig, TrainConfig  # noqa: E402
from warm.errors import WarmError  # noqa: E402
from warm.fileio import read_json  # noqa: E402
from warm.merge.merge import merge_models  # noqa: E402
from warm.train.init import build_init
from warm.train.launcher import run_training, training_settings  # noqa: E402


@pytest.fixture()
def init_and_data(tiny_backbone_dir, tmp_path):
    init = tmp_path / "init"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(init)), progress=False)
    return init, write_pairs(tmp_path / "pairs.jsonl", n=16)


def _config(init, data, out, **overrides):
    values = dict(init=(str(init),), data=str(data), out=str(out), members=2, lr=(1e-2, 5e-3), dropout=(0.0, 0.1),
                  max_steps=2, batch_size=4, max_length=32, lora_r=4, lora_alpha=8.0, lora_targets=("query", "value"))
    values.update(overrides)
    return TrainConfig(**values)


def test_lora_members_are_adapters_with_their_own_head(init_and_data, tmp_path):
    init, data = init_and_data
    out = tmp_path / "run"
    metrics = run_training(_config(init, data, out), progress=False)
    assert set(metrics["members"]) == {"m00", "m01"}
    plan = read_json(out / "plan.json")
    assert plan["training"]["lora"] == {"r": 4, "alpha": 8.0, "dropout": 0.0, "targets": ["query", "value"]}
    member = out / "members" / "m00"
    files = {p.name for p in member.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "warm_member.json"} <= files
    assert "model.safetensors" not in files  # no full copy of the model per member
    meta = read_json(member / "warm_member.json")
    assert meta["lora"]["base"] == str(init.resolve()) and meta["lora"]["r"] == 4
    assert meta["lora"]["target_modules"] == ["query", "value"] and "classifier" in meta["lora"]["modules_to_save"]
    assert meta["init_fingerprint"] == read_json(init / "warm_init.json")["fingerprint"]
    config = read_json(member / "adapter_config.json")
    assert config["base_model_name_or_path"] == str(init.resolve()) and config["lora_alpha"] == 8.0
    adapter = load_file(str(member / "adapter_model.safetensors"))
    base = load_file(str(init / "model.safetensors"))
    head = adapter["base_model.model.classifier.weight"]
    assert not torch.equal(head, base["classifier.weight"])  # the head trained and was saved
    assert any(k.endswith("query.lora_B.weight") and v.abs().sum() > 0 for k, v in adapter.items())

    # Resuming reuses both adapters; other LoRA settings are a changed plan; the members merge into one model.
    again = run_training(_config(init, data, out), progress=False)
    assert again["members"] == metrics["members"]
    with pytest.raises(WarmError, match=r"plan changed .*training.lora"):
        run_training(_config(init, data, out, lora_r=8), progress=False)
    info = merge_models([out / "members" / "m00", out / "members" / "m01"], tmp_path / "warm", progress=False)
    assert info["lora"]["base"] == str(init.resolve()) and info["init_fingerprint"] == meta["init_fingerprint"]
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(tmp_path / "warm")


def test_lora_settings_are_part_of_the_plan(init_and_data, tmp_path):
    init, data = init_and_data
    contract = InputContract(max_length=64)

    def settings(**changes):
        return training_settings(_config(init, data, tmp_path, **changes), contract).to_plan()

    assert settings().get("lora") == {"r": 4, "alpha": 8.0, "dropout": 0.0, "targets": ["query", "value"]}
    assert settings(lora_alpha=None, lora_targets=None)["lora"] == {
        "r": 4, "alpha": 4.0, "dropout": 0.0, "targets": []}  # alpha defaults to r; PEFT picks the targets
    # Absent, not None, for full fine-tuning: plans written before LoRA existed keep their hash.
    assert "lora" not in settings(lora_r=0)


def test_bad_lora_settings_fail_in_one_line(init_and_data, tmp_path):
    init, data = init_and_data
    with pytest.raises(WarmError, match="--lora-r -1"):
        run_training(_config(init, data, tmp_path / "a", lora_r=-1), progress=False)
    with pytest.raises(WarmError, match=r"cannot apply LoRA .*set --lora-targets"):
        run_training(_config(init, data, tmp_path / "b", lora_targets=("no_such_module",)), progress=False)
