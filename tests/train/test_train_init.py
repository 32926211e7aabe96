"""`warm init`: the shared head is drawn once, by its seed, and everything else is the base model."""

import pytest
import torch
from safetensors.torch import load_file

from warm.config import InitConfig
from warm.errors import WarmError
from warm.fileio import read_json
from warm.models.init import weights_fingerprint
from warm.train.init import build_init
from warm.rundir import INIT_FILE


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_head_is_a_function_of_the_seed(tiny_backbone_dir, tmp_path):
    a = build_init(InitConfig(model=str(tiny_backbone_dir), out=str(tmp_path / "a"), head_seed=1), progress=False)
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(tmp_path / "b"), head_seed=1), progress=False)
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(tmp_path / "c"), head_seed=2), progress=False)
    wa, wb, wc = (_weights(tmp_path / n) for n in "abc")
    assert a["head_parameters"] == ["classifier.bias", "classifier.weight"]
    assert torch.equal(wa["classifier.weight"], wb["classifier.weight"])
    assert not torch.equal(wa["classifier.weight"], wc["classifier.weight"])
    # The backbone is the base model's, untouched, whatever the head seed.
    base = load_file(str(tiny_backbone_dir / "model.safetensors"))
    key = next(k for k in wa if k.endswith("word_embeddings.weight"))
    base_key = next(k for k in base if k.endswith("word_embeddings.weight"))
    assert torch.equal(wa[key], base[base_key]) and torch.equal(wc[key], base[base_key])


def test_init_metadata_and_tokenizer(tiny_backbone_dir, tmp_path):
    out = tmp_path / "init"
    info = build_init(InitConfig(model=str(tiny_backbone_dir), out=str(out)), progress=False)
    meta = read_json(out / INIT_FILE)
    assert meta["fingerprint"] == info["fingerprint"] == weights_fingerprint(out)
    assert meta["pad_token"] == "[PAD]"
    assert meta["chat_template"] == "warm-encoder"  # the tiny BERT tokenizer has no chat template
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1 and model.config.pad_token_id == 0
    assert model.config.problem_type == "regression"  # pipeline("text-classification") returns the raw reward
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template and tokenizer.truncation_side == "left" and tokenizer.model_max_length == 160
    contract = read_json(out / "warm_contract.json")
    assert contract["max_length"] == 160 and contract["template"] == "warm-encoder" and contract["add_special_tokens"]


def test_init_refuses_existing_output(tiny_backbone_dir, tmp_path):
    out = tmp_path / "init"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(out)), progress=False)
    with pytest.raises(WarmError, match="already exists"):
        build_init(InitConfig(model=str(tiny_backbone_dir), out=str(out)), progress=False)


def test_missing_model_is_one_line_error(tmp_path):
    with pytest.raises(WarmError, match="not-a-model.*offline|not-a-model.*local"):
        build_init(InitConfig(model="org/not-a-model", out=str(tmp_path / "x")), progress=False)
    assert not (tmp_path / "x").exists()


def test_linear_probe_trains_only_the_head(tiny_backbone_dir, tmp_path):
    from conftest import write_pairs

    data = write_pairs(tmp_path / "pairs.jsonl", n=32)
    plain = tmp_path / "plain"
    probed = tmp_path / "probed"
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(plain), head_seed=3), progress=False)
    info = build_init(InitConfig(model=str(tiny_backbone_dir), out=str(probed), head_seed=3, linear_probe=str(data),
                                 probe_steps=5, probe_lr=1e-2, max_length=32), progress=False)
    assert info["linear_probe"]["steps"] == 5
    wp, wq = _weights(plain), _weights(probed)
    changed = {k for k in wp if not torch.equal(wp[k], wq[k])}
    # The Bradley-Terry loss sees only reward differences, so the bias's gradient is zero up to rounding.
    assert "classifier.weight" in changed and changed <= {"classifier.weight", "classifier.bias"}


def test_linear_probe_fits_on_eval_mode_features(tiny_backbone_dir, tmp_path, monkeypatch):
    """The Trainer turns train mode on at every step; the probe keeps the frozen backbone in eval mode (no dropout
    masks, fused attention), and the model's own `train` is back afterwards."""
    from conftest import write_pairs

    from warm.train import probe

    seen, fitted = [], []
    real_fit = probe.fit_reward_model

    def spying_fit(model, *args, **kwargs):
        model.register_forward_pre_hook(lambda module, inputs: seen.append(module.training))
        fitted.append(model)
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(probe, "fit_reward_model", spying_fit)
    data = write_pairs(tmp_path / "pairs.jsonl", n=32)
    build_init(InitConfig(model=str(tiny_backbone_dir), out=str(tmp_path / "probed"), head_seed=3,
                          linear_probe=str(data), probe_steps=3, max_length=32), progress=False)
    assert len(seen) >= 3 and not any(seen)
    model = fitted[0]
    assert "train" not in vars(model)
    assert model.train().training  # the class's method again: train mode can be switched on
