"""The model card (README.md) written beside a merged reward model, so the directory explains itself on the Hub."""

from __future__ import annotations

import numbers
from pathlib import Path

from warm.data.contract import CHAT_TEMPLATE, InputContract

_CITATION = "Ramé et al. 2024, *WARM: On the Benefits of Weight Averaged Reward Models*, arXiv:2401.12187"


def _fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    return f"{value:.4g}"


def usage_snippet(contract: InputContract | None, path: str = "path/to/this/model") -> str:
    """Python that computes this model's reward with transformers alone, exactly as warm does (the input contract).

    The model card shows it; `warm check` and the tests execute the same text (`snippet_setup`, `snippet_score`).
    """
    if contract is None or contract.rendering != CHAT_TEMPLATE:
        return ("# Made before warm's input contract: score it with warm (warm eval / warm serve), which reads it\n"
                "# as trained (prompt and response as the tokenizer's two segments).")
    return "\n".join([snippet_setup(path),
                      'conversation = [{"role": "user", "content": "How do I boil an egg?"},',
                      '                {"role": "assistant", "content": "Put it in boiling water for 8 minutes."}]',
                      snippet_score(contract)])


def snippet_setup(path: str) -> str:
    """The snippet's first part: load the model and its tokenizer."""
    return "\n".join([
        "import torch",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "",
        f"path = {path!r}",
        "tokenizer = AutoTokenizer.from_pretrained(path)",
        "model = AutoModelForSequenceClassification.from_pretrained(path).eval()",
    ])


def snippet_score(contract: InputContract) -> str:
    """The snippet's last part: the reward of `conversation` (a list of {role, content} turns)."""
    return "\n".join([
        "text = tokenizer.apply_chat_template(conversation, tokenize=False)",
        f"inputs = tokenizer(text, add_special_tokens={contract.add_special_tokens}, truncation=True, "
        'return_tensors="pt")',
        "with torch.no_grad():",
        "    reward = model(**inputs).logits[0, 0].item()",
    ])


def render_model_card(merge_info: dict, member_metrics: list[dict | None], contract: InputContract | None = None) -> str:
    """Markdown with YAML front matter: what the model is, its members and weights, lineage, and usage.

    `merge_info` is the warm_merge.json payload; `member_metrics[i]` is member i's `metrics` from its
    warm_member.json (None when absent). Only numeric metrics become table columns, to keep the table readable.
    `contract` (warm_contract.json) makes the usage snippet the exact recipe of the model's reward.
    """
    members = merge_info["members"]
    weights = merge_info["weights"]
    count = len(members)
    uniform = all(abs(w - 1.0 / count) < 1e-12 for w in weights)
    columns = sorted(
        {k for m in member_metrics if m for k, v in m.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
    )
    fingerprint = merge_info.get("init_fingerprint")
    lines = [
        "---",
        "library_name: transformers",
        "tags: [reward-model, warm, weight-averaging]",
        "pipeline_tag: text-classification",
        "---",
        "",
        "# WARM reward model",
        "",
        f"A {'uniform' if uniform else 'weighted'} average ({merge_info['method']}) of the weights of {count} "
        "reward models fine-tuned from one shared initialisation: a Weight Averaged Reward Model "
        f"({_CITATION}). It is a single model, as cheap to run as one member, and it scores a text as "
        "`AutoModelForSequenceClassification` with one output (higher is preferred).",
        "",
        "## Members",
        "",
        "| # | member | weight |" + "".join(f" {c} |" for c in columns),
        "|---|---|---|" + "---|" * len(columns),
    ]
    for i, (path, weight) in enumerate(zip(members, weights)):
        metrics = (member_metrics[i] if i < len(member_metrics) else None) or {}
        cells = "".join(f" {_fmt(metrics[c]) if c in metrics else ''} |" for c in columns)
        lines.append(f"| {i} | `{Path(path).name}` | {weight:.4g} |{cells}")
    lines += [
        "",
        f"Init fingerprint: `{fingerprint}`" if fingerprint else
        "Init fingerprint: unknown or not shared by all members (see `warm_merge.json`).",
        "",
        "## Usage",
        "",
        *_contract_lines(contract),
        "```python",
        usage_snippet(contract),
        "```",
        "",
        f"Made with warm {merge_info.get('warm_version', '')}; merge details in `warm_merge.json`.",
        "",
    ]
    return "\n".join(lines)


def _contract_lines(contract: InputContract | None) -> list[str]:
    if contract is None or contract.rendering != CHAT_TEMPLATE:
        return []
    specials = ("with the tokenizer's special tokens" if contract.add_special_tokens
                else "with no special tokens beyond the template's")
    return [f"The reward of a (prompt, response) is `logits[0, 0]` of the conversation [user: prompt, assistant: "
            f"response] rendered by the tokenizer's chat template and tokenised as one sequence {specials}, "
            f"cut from the left to {contract.max_length} tokens (`warm_contract.json`). "
            "`pipeline(\"text-classification\", model=path)` returns the same raw reward for that text.", ""]
