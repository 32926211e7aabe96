"""Dropout rates per architecture family: which config fields carry a member's rate."""

import pytest

from warm.errors import WarmError
from warm.models.dropout import set_dropout


def test_set_dropout_per_family():
    from transformers import BertConfig, GPT2Config, LlamaConfig

    bert = BertConfig()
    assert set(set_dropout(bert, 0.05)) >= {"hidden_dropout_prob", "attention_probs_dropout_prob"}
    # the member's rate on the hidden states; none on the attention probabilities (fused attention kernels)
    assert bert.hidden_dropout_prob == 0.05 and bert.attention_probs_dropout_prob == 0.0
    set_dropout(bert, 0.05, attention_rate=0.1)
    assert bert.attention_probs_dropout_prob == 0.1
    gpt2 = GPT2Config()
    assert {"resid_pdrop", "embd_pdrop", "attn_pdrop"} <= set(set_dropout(gpt2, 0.2)) and gpt2.resid_pdrop == 0.2
    assert gpt2.attn_pdrop == 0.0
    llama = LlamaConfig()  # attention is its only dropout: the member's rate goes there
    assert "attention_dropout" in set_dropout(llama, 0.1) and llama.attention_dropout == 0.1
    with pytest.raises(WarmError, match="dropout=1.5"):
        set_dropout(BertConfig(), 1.5)
