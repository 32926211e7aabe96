"""Setting dropout in a model config: the config field names differ per architecture family."""

from __future__ import annotations

from warm.errors import WarmError

# Field names that hold dropout probabilities applied during fine-tuning, per config family:
# BERT-style (bert, roberta, MiniLM, electra), GPT-2-style, Llama-style (llama, mistral, qwen2, smollm).
DROPOUT_FIELDS = (
    "hidden_dropout_prob",  # BERT-style
    "resid_pdrop", "embd_pdrop",  # GPT-2-style
    "hidden_dropout",  # Falcon/Bloom-style
    "dropout", "classifier_dropout",
)
# Dropout on the attention probabilities, set apart: any rate above 0 sends PyTorch's scaled-dot-product attention
# to its unfused path (the fused CPU kernels take no dropout), which made MiniLM's training at 384 tokens 2.5x
# slower on the project's 2-core CPU (benchmarks/long_inputs.py, docs/results/long-inputs.md).
ATTENTION_DROPOUT_FIELDS = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout", "attention_probs_dropout")


def set_dropout(config, rate: float, attention_rate: float = 0.0) -> list[str]:
    """Set every known dropout field present in `config` to `rate`, and the attention-probability ones to
    `attention_rate`; return the fields set.

    WARM's members differ by dropout among other things (Ramé et al. 2024, Sec. 3.1): the member's rate goes to the
    hidden states (and classifier). A family whose only dropout is on attention (Llama-style) gets the member's rate
    there, its one diversity knob; a config with no known field is an error rather than a silent no-op.
    """
    for name, value in (("dropout", rate), ("attention dropout", attention_rate)):
        if not 0.0 <= value < 1.0:
            raise WarmError(f"{name}={value}: must be in [0, 1)")

    def present(names: tuple[str, ...]) -> list[str]:
        found = [n for n in names if getattr(config, n, None) is not None or n in config.to_dict()]
        return [n for n in found if n != "classifier_dropout" or getattr(config, n, None) is not None]

    fields, attention = present(DROPOUT_FIELDS), present(ATTENTION_DROPOUT_FIELDS)
    if not fields and attention:
        fields, attention = attention, []
    if not fields:
        raise WarmError(f"config of model_type {config.model_type!r} has no dropout field warm knows ({', '.join(DROPOUT_FIELDS)})")
    for name in fields:
        setattr(config, name, rate)
    for name in attention:
        setattr(config, name, attention_rate)
    return fields + attention
