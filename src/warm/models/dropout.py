"""Setting dropout in a model config: the config field names differ per architecture family."""

from __future__ import annotations

from warm.errors import WarmError

# Field names that hold dropout probabilities applied during fine-tuning, per config family:
# BERT-style (bert, roberta, MiniLM, electra), GPT-2-style, Llama-style (llama, mistral, qwen2, smollm).
DROPOUT_FIELDS = (
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT-style
    "resid_pdrop", "embd_pdrop", "attn_pdrop",  # GPT-2-style
    "attention_dropout", "hidden_dropout",  # Llama-style (attention_dropout), Falcon/Bloom-style
    "dropout", "attention_probs_dropout", "classifier_dropout",
)


def set_dropout(config, rate: float) -> list[str]:
    """Set every known dropout field present in `config` to `rate`; return the fields set.

    WARM's members differ by dropout among other things (Ramé et al. 2024, Sec. 3.1), so a config without any
    known field is an error rather than a silent no-op.
    """
    if not 0.0 <= rate < 1.0:
        raise WarmError(f"dropout={rate}: must be in [0, 1)")
    fields = [name for name in DROPOUT_FIELDS if getattr(config, name, None) is not None or name in config.to_dict()]
    fields = [name for name in fields if name != "classifier_dropout" or getattr(config, name, None) is not None]
    if not fields:
        raise WarmError(f"config of model_type {config.model_type!r} has no dropout field warm knows ({', '.join(DROPOUT_FIELDS)})")
    for name in fields:
        setattr(config, name, rate)
    return fields
