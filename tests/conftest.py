"""Tiny models built inside the tests: no downloads, seconds to train.

`tiny_model_dir` is a BERT-style reward model (2 layers, hidden 32) with a real WordPiece tokenizer whose vocab
is written here, saved as a standard HF directory. `make_tiny_model_dir` builds more with other seeds.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ["the", "a", "an", "is", "are", "was", "good", "bad", "great", "terrible", "answer", "question", "yes", "no", "please", "thank", "you", "help", "helpful", "harmful", "correct", "wrong", "long", "short", "because", "it", "this", "that", "what", "how", "why", "when", "where", "who", "i", "we", "they", "write", "list", "explain", "tell", "me", "about", "cat", "dog", "water", "fire", "code", "python", "sure", "sorry", "cannot", "here", "user", "assistant", "system"]

# A small constructed preference split (a prompt repeats, so some sequences are scored once for two pairs) with
# corruption marks, shared by the evaluation tests.
PROMPTS = ["what is a cat", "tell me about fire", "why", "write python code", "help me", "who are you",
           "what is a cat", "explain water", "is this good", "how"]
CHOSEN = ["a cat is an animal that says yes", "fire is hot", "because it is", "sure: print(1)", "here is help",
          "i am a helpful answer", "a cat is an animal that says yes", "water is wet and good", "yes", "like this"]
REJECTED = ["no", "fire is cold and wrong and bad", "sorry", "i cannot write code", "no help",
            "who knows", "dog", "water is fire", "no it is terrible and bad", "how"]
CORRUPTED = [False, True, False, False, True, False, False, True, False, False]


def build_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits) + list(".,!?;:'\"()-")
    return specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS


def make_tiny_model_dir(path: Path, seed: int = 0, hidden_dropout: float = 0.1, contract: bool = True) -> Path:
    """A tiny BERT reward model. With `contract`, it reads its inputs as a warm model does (warm's encoder template
    and warm_contract.json, max length 128), as if `warm init` had made it; without, it is a foreign checkpoint."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    from warm.data.contract import new_contract
    from warm.models.contract_files import apply_to_save, write_contract

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        hidden_dropout_prob=hidden_dropout,
        attention_probs_dropout_prob=hidden_dropout,
        num_labels=1,
        pad_token_id=0,
    )
    if contract:
        input_contract = new_contract(tokenizer, 128)
        apply_to_save(tokenizer, config, input_contract)
        write_contract(path, input_contract)
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def tiny_model_factory(tmp_path):
    """Call with a name and seed to get a fresh tiny model directory under this test's tmp_path."""

    def factory(name: str = "model", seed: int = 0, **kwargs) -> Path:
        return make_tiny_model_dir(tmp_path / name, seed=seed, **kwargs)

    return factory


def make_tiny_backbone_dir(path: Path, seed: int = 0) -> Path:
    """A tiny BERT *without* a reward head (like a pretrained encoder): loading it for sequence
    classification has to draw the head, which is what `warm init` seeds."""
    from transformers import BertModel

    path = make_tiny_model_dir(Path(path), seed=seed, contract=False)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    torch.manual_seed(seed)
    backbone = BertModel(config, add_pooling_layer=True)
    for stale in path.glob("*.safetensors"):
        stale.unlink()
    backbone.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    return make_tiny_backbone_dir(tmp_path_factory.mktemp("tiny-backbone") / "backbone")


def write_pairs(path: Path, n: int = 24, seed: int = 0) -> Path:
    """A learnable preference file: chosen responses say 'good/helpful/correct', rejected 'bad/wrong'."""
    import json
    import random

    rng = random.Random(seed)
    good, bad = ["good", "helpful", "correct", "great"], ["bad", "wrong", "terrible", "harmful"]
    topics = ["cat", "dog", "water", "fire", "code", "python"]
    rows = []
    for i in range(n):
        topic = rng.choice(topics)
        rows.append({
            "prompt": f"tell me about the {topic}",
            "chosen": f"the {topic} is {rng.choice(good)} and {rng.choice(good)}",
            "rejected": f"the {topic} is {rng.choice(bad)}" + (" and long" * rng.randint(0, 2)),
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# A tiny causal LM (the policy of best-of-N, RL and win-rate tests): WordLevel tokenizer over WORDS, a chat template
# with [USER]/[BOT] markers, a Llama of hidden 32 and 2 layers. The same recipe as tests/apply/test_generate.py's.
POLICY_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "[USER]", "[BOT]"]
POLICY_CHAT_TEMPLATE = ("{{ '<s>' }}{% for m in messages %}{{ '[USER]' if m['role'] == 'user' else '[BOT]' }} "
                        "{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}[BOT]{% endif %}")


def make_tiny_policy_dir(path: Path, chat_template: bool = True, seed: int = 0, eos_logit: float = 0.6,
                         hidden_size: int = 32, num_layers: int = 2) -> Path:
    """A tiny Llama causal LM with a WordLevel tokenizer built here (no downloads), saved as an HF directory.

    `eos_logit` fills EOS's row of the LM head so that some samples finish within a few tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    vocab = {token: i for i, token in enumerate(POLICY_SPECIALS + sorted(set(WORDS + ["hot", "water", "fire"])))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>",
                                        additional_special_tokens=["[USER]", "[BOT]"])
    if chat_template:
        tokenizer.chat_template = POLICY_CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=128, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
                         pad_token_id=vocab["<pad>"])
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[vocab["</s>"]] = eos_logit
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one thread is ~10x faster than two fighting other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def policy_dir(one_thread, tmp_path_factory) -> str:
    """A tiny causal LM (the policy of generation and RL tests), one per test module."""
    return str(make_tiny_policy_dir(tmp_path_factory.mktemp("policy") / "tiny-llama"))


def make_trained_merge(root: Path, base: Path, lora_r: int = 0) -> tuple[Path, Path]:
    """(WARM dir, pairs file): `warm init` from `base`, two members trained 3 steps by warm, merged. Seconds."""
    from warm.config import InitConfig, TrainConfig
    from warm.merge.merge import merge_models
    from warm.train.init import build_init
    from warm.train.launcher import run_training

    root = Path(root)
    build_init(InitConfig(model=str(base), out=str(root / "init")), progress=False)
    data = write_pairs(root / "pairs.jsonl", n=24)
    run_training(TrainConfig(init=(str(root / "init"),), data=str(data), out=str(root), members=2, max_steps=3,
                             batch_size=8, max_length=48, precision="fp32", lora_r=lora_r, lr=(1e-3,)), progress=False)
    merge_models([root / "members" / "m00", root / "members" / "m01"], root / "warm", progress=False)
    return root / "warm", data


@pytest.fixture(scope="session")
def trained_merges(tmp_path_factory):
    """A tiny encoder and a tiny decoder reward model, each trained by warm and merged, and the decoder's policy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trained-merges")
    policy = make_tiny_policy_dir(root / "policy")
    merges = {"encoder": make_trained_merge(root / "encoder", make_tiny_backbone_dir(root / "backbone")),
              "decoder": make_trained_merge(root / "decoder", policy, lora_r=4), "policy": policy}
    torch.set_num_threads(before)
    return merges
