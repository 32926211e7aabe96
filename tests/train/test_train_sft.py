"""`warm sft`: the LM objective follows the backbone, the loss falls, checkpoints feed `warm init`, reruns resume."""

import hashlib
import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from conftest import build_vocab, write_pairs
from safetensors.torch import load_file

from warm.config import InitConfig
from warm.errors import WarmError
from warm.fileio import read_json
from warm.train.init import build_init
from warm.models.loading import load_tokenizer
from warm.train.sft import checkpoint_dir, lm_objective, masked_lm_head, masked_positions_loss, run_sft
from warm.train.sft_command import sft_command
from warm.train.sft_config import SFTConfig
from warm.train.sft_data import load_sequences
from warm.rundir import SFT_FILE

TOPICS = ["cat", "dog", "water", "fire"]


def write_corpus(path, n=32):
    """A repetitive instruction/output file (the pool's fields): masked tokens are easy to predict from context."""
    rows = [{"instruction": f"tell me about the {t}", "output": f"the {t} is good and helpful", "gold": 0.5}
            for t in TOPICS * (n // len(TOPICS))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(model, data, out, **overrides):
    values = dict(model=str(model), data=str(data), out=str(out), save_steps=(10, 20), lr=5e-3, batch_size=8,
                  max_length=32, precision="fp32", seed=0)
    values.update(overrides)
    return SFTConfig(**values)


@pytest.fixture(scope="module")
def sft_run(one_thread, tiny_backbone_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    config = _config(tiny_backbone_dir, write_corpus(root / "corpus.jsonl"), root / "run")
    return config, run_sft(config, progress=False)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_masked_lm_loss_falls_and_checkpoints_describe_themselves(sft_run):
    config, result = sft_run
    assert result["status"] == "trained" and result["objective"] == "mlm" and result["steps"] == 20
    assert result["carried_from_base"] == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    assert result["logits_at_masked_positions_only"] is True
    losses = [entry["loss"] for entry in result["log_history"]]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3  # it learns the repetitive corpus
    assert result["tokens_per_second"] > 0 and result["data"]["n_sequences"] == 32
    assert read_json(f"{config.out}/sft.json")["run_key"] == result["run_key"]
    for step in (10, 20):
        meta = read_json(checkpoint_dir(config.out, step) / SFT_FILE)
        assert meta["step"] == step and meta["run_key"] == result["run_key"]
        assert meta["loss"] == meta["loss_history"][-1]["loss"] and meta["loss_history"][-1]["step"] == step
        assert meta["data"]["sha256"] == result["data"]["sha256"]


def test_checkpoints_feed_warm_init(sft_run, tiny_backbone_dir, tmp_path):
    config, _ = sft_run
    base = load_file(str(tiny_backbone_dir / "model.safetensors"))
    ckpt10, ckpt20 = (load_file(str(checkpoint_dir(config.out, s) / "model.safetensors")) for s in (10, 20))
    encoder = [k for k in ckpt10 if k.startswith("bert.") and "pooler" not in k]
    # Two points of one run, both away from the base.
    assert any(not torch.equal(ckpt10[k], ckpt20[k]) for k in encoder)
    assert not torch.equal(ckpt10["bert.embeddings.word_embeddings.weight"], base["embeddings.word_embeddings.weight"])

    info = build_init(InitConfig(model=str(checkpoint_dir(config.out, 10)), out=str(tmp_path / "init")), progress=False)
    assert info["head_parameters"] == ["classifier.bias", "classifier.weight"]
    init = load_file(str(tmp_path / "init" / "model.safetensors"))
    assert not any(k.startswith("cls.") for k in init)  # the LM head is dropped
    for key in encoder:  # the reward model's backbone is the SFT checkpoint's encoder, tensor for tensor
        assert torch.equal(init[key], ckpt10[key]), key
    for name in ("weight", "bias"):  # and the pooler, untouched by MLM, is the base model's
        assert torch.equal(init[f"bert.pooler.dense.{name}"], base[f"pooler.dense.{name}"])


def test_rerun_keeps_checkpoints_and_refuses_other_settings(sft_run, tmp_path):
    config, _ = sft_run
    run = tmp_path / "run"
    shutil.copytree(config.out, run)
    assert run_sft(_config(config.model, config.data, run), progress=False)["status"] == "complete"

    before = {s: _sha(checkpoint_dir(run, s) / "model.safetensors") for s in (10, 20)}
    grown = run_sft(_config(config.model, config.data, run, save_steps=(10, 15, 20)), progress=False)
    assert [(c["step"], c["reused"]) for c in grown["checkpoints"]] == [(10, True), (15, False), (20, True)]
    # The restart retraces the same run (seeded data order and masking), so kept and new checkpoints are one run.
    retraced = {e["step"]: e["loss"] for e in grown["log_history"]}
    assert retraced[10] == pytest.approx(grown["checkpoints"][0]["loss"], rel=1e-5)
    assert {s: _sha(checkpoint_dir(run, s) / "model.safetensors") for s in (10, 20)} == before
    assert (checkpoint_dir(run, 15) / SFT_FILE).exists()

    with pytest.raises(WarmError, match="other settings or data"):
        run_sft(_config(config.model, config.data, run, lr=1e-3), progress=False)


def test_masked_positions_loss_equals_the_models_own(tiny_backbone_dir):
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(tiny_backbone_dir).eval()
    head = masked_lm_head(model)
    assert head is model.cls
    tokenizer = load_tokenizer(str(tiny_backbone_dir))
    batch = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3, seed=0)(
        [tokenizer(f"the {t} is good and helpful because it is") for t in TOPICS])
    assert (batch["labels"] != -100).any()
    assert torch.allclose(masked_positions_loss(model, head, batch), model(**batch).loss, atol=1e-5)
    assert masked_lm_head(_TwoHeads()) is None  # not one module over the hidden states: the model's own forward


class _TwoHeads(torch.nn.Module):
    base_model_prefix = "body"

    def __init__(self):
        super().__init__()
        self.body, self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)


def test_sequences_from_pool_preference_and_named_fields(tiny_backbone_dir, tmp_path):
    tokenizer = load_tokenizer(str(tiny_backbone_dir))
    pool = write_corpus(tmp_path / "pool.jsonl", n=8)
    texts, info = load_sequences(_config(tiny_backbone_dir, pool, tmp_path / "o", limit=3), tokenizer)
    assert info["mode"] == "fields" and texts == [("tell me about the cat", "the cat is good and helpful"),
                                                   ("tell me about the dog", "the dog is good and helpful"),
                                                   ("tell me about the water", "the water is good and helpful")]
    three = _config(tiny_backbone_dir, pool, tmp_path / "o", text_fields=("instruction", "instruction", "output"))
    texts, _ = load_sequences(three, tokenizer)
    assert texts[0] == ("tell me about the cat\ntell me about the cat", "the cat is good and helpful")

    pairs = write_pairs(tmp_path / "pairs.jsonl", n=5)
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    texts, info = load_sequences(_config(tiny_backbone_dir, pairs, tmp_path / "o"), tokenizer)
    assert info["mode"] == "preference" and len(texts) == 10
    assert texts[:2] == [(rows[0]["prompt"], rows[0]["chosen"]), (rows[0]["prompt"], rows[0]["rejected"])]
    assert not getattr(tokenizer, "chat_template", None)  # the rendering fallback stays off the saved tokenizer

    with pytest.raises(WarmError, match="missing column.*answer"):
        load_sequences(_config(tiny_backbone_dir, pool, tmp_path / "o", text_fields=("instruction", "answer")), tokenizer)
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(WarmError, match="pass --text-fields"):
        load_sequences(_config(tiny_backbone_dir, odd, tmp_path / "o"), tokenizer)


def test_objective_follows_the_model_config_and_options_are_checked():
    from transformers import BertConfig, GPT2Config

    assert lm_objective(BertConfig()) == "mlm"
    assert lm_objective(BertConfig(is_decoder=True)) == "clm"
    assert lm_objective(GPT2Config()) == "clm"  # GPT-2 leaves is_decoder False; it has no masked-LM class
    assert lm_objective(GPT2Config(), "mlm") == "mlm"
    assert SFTConfig(out="o", data="d", save_steps=(30, 10, 10)).save_steps == (10, 30)
    for bad, match in (({"save_steps": ()}, "save-steps"), ({"save_steps": (0,)}, "save-steps"),
                       ({"objective": "seq2seq"}, "objective"), ({"mlm_probability": 1.0}, "mlm-probability")):
        with pytest.raises(WarmError, match=match):
            SFTConfig(**{"out": "o", "data": "d", "save_steps": (1,), **bad})


def test_decoder_backbone_gets_causal_lm(one_thread, tiny_backbone_dir, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    decoder = tmp_path / "gpt"
    decoder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):  # any tokenizer will do for a shape test
        shutil.copy(tiny_backbone_dir / name, decoder / name)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(build_vocab()), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                               bos_token_id=2, eos_token_id=3)).save_pretrained(decoder)
    corpus = write_corpus(tmp_path / "c.jsonl", n=8)
    result = run_sft(_config(decoder, corpus, tmp_path / "run", save_steps=(3,)), progress=False)
    assert result["objective"] == "clm" and result["carried_from_base"] == []
    assert read_json(checkpoint_dir(tmp_path / "run", 3) / "config.json")["use_cache"] is True  # not the Trainer's False
    ckpt = load_file(str(checkpoint_dir(tmp_path / "run", 3) / "model.safetensors"))
    info = build_init(InitConfig(model=str(checkpoint_dir(tmp_path / "run", 3)), out=str(tmp_path / "init")), progress=False)
    assert info["head_parameters"] == ["score.weight"]
    init = load_file(str(tmp_path / "init" / "model.safetensors"))
    assert all(torch.equal(init[k], v) for k, v in ckpt.items() if k.startswith("transformer."))


def test_command_line(one_thread, tiny_backbone_dir, tmp_path, monkeypatch):
    from warm.train import sft

    calls = []
    monkeypatch.setattr(sft, "masked_positions_loss", lambda *a: calls.append(1) or masked_positions_loss(*a))
    args = ["--model", str(tiny_backbone_dir), "--data", str(write_corpus(tmp_path / "c.jsonl", n=8)),
            "--out", str(tmp_path / "run"), "--save-steps", "2,1", "--batch-size", "4", "--max-length", "32",
            "--precision", "fp32", "--quiet"]
    first = CliRunner().invoke(sft_command, args)
    assert first.exit_code == 0, first.output
    assert "mlm on 8 sequences: step 1 loss" in first.output and "tokens/s" in first.output
    assert len(calls) == 2  # the Trainer took the masked-positions loss at both steps
    again = CliRunner().invoke(sft_command, args)
    assert again.exit_code == 0 and "already in" in again.output
    bad = CliRunner().invoke(sft_command, args[:-1] + ["--save-steps", "0"])
    assert bad.exit_code == 2 and "error: --save-steps" in bad.output
