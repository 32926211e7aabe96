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

WORDS = (
    "the a an is are was good bad great terrible answer question yes no please thank you help helpful "
    "harmful correct wrong long short because it this that what how why when where who i we they "
    "write list explain tell me about cat dog water fire code python sure sorry cannot here"
).split()


def build_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits) + list(".,!?;:'\"()-")
    return specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS


def make_tiny_model_dir(path: Path, seed: int = 0, hidden_dropout: float = 0.1) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(path)
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
