"""Exact merging of LoRA members: full weights and one concatenated adapter, against hand computation and PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import peft  # noqa: E402 - a required dependency: a broken install fails here, not skips

from transformers import AutoModelForSequenceClassification  # noqa: E402

from warm.errors import WarmError  # noqa: E402
from warm.fileio import read_json  # noqa: E402
from warm.merge.merge import merge_models  # noqa: E402
from warm.merge.tensor_io import CheckpointReader  # noqa: E402
from warm.models.loading import load_tokenizer  # noqa: E402

INPUTS = torch.tensor([[2, 60, 70, 80, 3, 90, 95, 3], [2, 61, 71, 3, 0, 0, 0, 0]])
MASK = (INPUTS != 0).long()


def make_lora_member(init: Path, dest: Path, seed: int, r: int = 4, alpha: float = 8.0, **extra) -> Path:
    """A "trained" LoRA member: PEFT adapter on the init with seeded random factors and head, as warm saves it."""
    model = AutoModelForSequenceClassification.from_pretrained(init, num_labels=1)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["query", "value", "word_embeddings"],
                             modules_to_save=["classifier"], task_type="SEQ_CLS", **extra)
    wrapped = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if param.requires_grad:  # LoRA factors (B starts at zero in PEFT) and the head copy
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    wrapped.save_pretrained(dest)
    load_tokenizer(str(init)).save_pretrained(dest)
    fingerprint = read_json(init / "warm_init.json")["fingerprint"]
    (dest / "warm_member.json").write_text(json.dumps({
        "init": str(init), "init_fingerprint": fingerprint, "lora": {"r": r, "alpha": alpha, "base": str(init)}}))
    return dest


@pytest.fixture(scope="module")
def init(tiny_backbone_dir, tmp_path_factory) -> Path:
    from warm.config import InitConfig
    from warm.train.init import build_init

    path = tmp_path_factory.mktemp("lora") / "init"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(path)), progress=False)
    return path


@pytest.fixture(scope="module")
def lora_members(init) -> list[Path]:
    return [make_lora_member(init, init.parent / f"m{i:02d}", seed=i + 1) for i in range(3)]


def weights_of(model_dir: Path) -> dict[str, torch.Tensor]:
    with CheckpointReader(model_dir) as reader:
        return {name: reader.get(name) for name in reader.names()}


def rewards(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=INPUTS, attention_mask=MASK).logits[:, 0]


def full_rewards(path: Path) -> torch.Tensor:
    return rewards(AutoModelForSequenceClassification.from_pretrained(path))


def peft_rewards(init: Path, adapter: Path) -> torch.Tensor:
    base = AutoModelForSequenceClassification.from_pretrained(init, num_labels=1)
    return rewards(peft.PeftModel.from_pretrained(base, adapter))


def expected_weights(init: Path, members: list[Path], weights: list[float]) -> dict[str, torch.Tensor]:
    """W + sum_i w_i s_i B_i A_i on adapted modules, the weighted average of the head copies, W elsewhere."""
    from safetensors.torch import load_file

    merged = {k: v.double() for k, v in weights_of(init).items()}
    heads = {}
    for member, w in zip(members, weights):
        config = read_json(member / "adapter_config.json")
        s = config["lora_alpha"] / config["r"]
        adapter = {k.removeprefix("base_model.model."): v.double()
                   for k, v in load_file(str(member / "adapter_model.safetensors")).items()}
        for key, a in adapter.items():
            if key.endswith(".lora_A.weight"):
                module = key.removesuffix(".lora_A.weight")
                merged[module + ".weight"] += w * s * (adapter[module + ".lora_B.weight"] @ a)
            elif key.endswith(".lora_embedding_A"):
                module = key.removesuffix(".lora_embedding_A")
                merged[module + ".weight"] += w * s * (adapter[module + ".lora_embedding_B"] @ a).T
            elif "lora_" not in key:
                heads[key] = heads.get(key, 0) + w * a
    merged.update(heads)
    return {k: v.float() for k, v in merged.items()}


def test_single_member_merge_equals_peft(init, lora_members, tmp_path):
    # A merge of one member is that member's effective weights: the delta math agrees with PEFT's own forward.
    merge_models([lora_members[0]], tmp_path / "one", progress=False)
    torch.testing.assert_close(full_rewards(tmp_path / "one"), peft_rewards(init, lora_members[0]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 5.0]])
def test_full_and_adapter_forms_are_exact_and_agree(init, lora_members, tmp_path, weights):
    full, adapter = tmp_path / "full", tmp_path / "adapter"
    info = merge_models(lora_members, full, weights=weights, progress=False)
    norm = info["weights"]
    merged = weights_of(full)
    expected = expected_weights(init, lora_members, norm)
    assert merged.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(merged[name], expected[name], rtol=1e-6, atol=1e-6, msg=name)
    assert info["lora"]["output"] == "full" and info["lora"]["scalings"] == [2.0] * 3
    files = {p.name for p in full.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "warm_merge.json", "tokenizer.json"} <= files
    assert not any(name.startswith("adapter") for name in files)  # a plain HF directory

    info_a = merge_models(lora_members, adapter, weights=weights, lora_output="adapter", progress=False)
    config = read_json(adapter / "adapter_config.json")
    assert config["r"] == 12 and config["lora_alpha"] == pytest.approx(2.0 * 12)  # alpha' = s * M * R
    assert info_a["lora"]["rank"] == 12 and info_a["weight_files"] == ["adapter_model.safetensors"]
    assert not (adapter / "model.safetensors").exists()
    # Same scores: the merged HF model (transformers alone), the one adapter on the init (PEFT), and by hand.
    scores = full_rewards(full)
    torch.testing.assert_close(peft_rewards(init, adapter), scores, rtol=1e-5, atol=1e-5)
    manual = AutoModelForSequenceClassification.from_pretrained(init, num_labels=1)
    manual.load_state_dict(expected, strict=False)
    torch.testing.assert_close(rewards(manual), scores, rtol=1e-5, atol=1e-5)


def test_adapter_form_folds_different_scalings(init, lora_members, tmp_path):
    other = make_lora_member(init, tmp_path / "rs", seed=9, alpha=4.0, use_rslora=True)  # s = 4 / sqrt(4) = 2
    odd = make_lora_member(init, tmp_path / "odd", seed=8, alpha=2.0)  # s = 0.5
    members = [lora_members[0], other, odd]
    merge_models(members, tmp_path / "full", progress=False)
    info = merge_models(members, tmp_path / "adapter", lora_output="adapter", progress=False)
    assert info["lora"]["scalings"] == [2.0, 2.0, 0.5]
    torch.testing.assert_close(peft_rewards(init, tmp_path / "adapter"), full_rewards(tmp_path / "full"),
                               rtol=1e-5, atol=1e-5)


def test_refusals(init, lora_members, tiny_model_dir, tmp_path):
    with pytest.raises(WarmError, match="not a LoRA adapter"):
        merge_models([lora_members[0], tiny_model_dir], tmp_path / "mixed", progress=False)
    with pytest.raises(WarmError, match="linear method only"):
        from warm.merge import methods

        methods.MERGE_METHODS["other"] = methods.linear  # a second registered method, for this check only
        try:
            merge_models(lora_members, tmp_path / "x", method="other", progress=False)
        finally:
            del methods.MERGE_METHODS["other"]
    dora = make_lora_member(init, tmp_path / "dora", seed=5, use_dora=True)
    with pytest.raises(WarmError, match=r"dora/adapter_config.json: DoRA is not supported"):
        merge_models([lora_members[0], dora], tmp_path / "d", progress=False)
    with pytest.raises(WarmError, match=r"base model directory not found"):
        merge_models(lora_members, tmp_path / "b", lora_base=tmp_path / "nowhere", progress=False)
    with pytest.raises(WarmError, match=r"m00: trained from init .* but base .* has fingerprint"):
        other_init = tmp_path / "other-init"
        other_init.mkdir()
        for path in init.iterdir():
            (other_init / path.name).write_bytes(path.read_bytes())
        record = read_json(other_init / "warm_init.json")
        (other_init / "warm_init.json").write_text(json.dumps({**record, "fingerprint": "f" * 64}))
        merge_models(lora_members, tmp_path / "c", lora_base=other_init, progress=False)
    with pytest.raises(WarmError, match="--lora-output adapter applies to adapter members only"):
        merge_models([tiny_model_dir], tmp_path / "e", lora_output="adapter", progress=False)
    assert not any(p.name in {"mixed", "d", "b", "c", "e"} for p in tmp_path.iterdir())
