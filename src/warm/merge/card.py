"""The model card (README.md) written beside a merged reward model, so the directory explains itself on the Hub."""

from __future__ import annotations

import numbers
from pathlib import Path

_CITATION = "Ramé et al. 2024, *WARM: On the Benefits of Weight Averaged Reward Models*, arXiv:2401.12187"


def _fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    return f"{value:.4g}"


def render_model_card(merge_info: dict, member_metrics: list[dict | None]) -> str:
    """Markdown with YAML front matter: what the model is, its members and weights, lineage, and usage.

    `merge_info` is the warm_merge.json payload; `member_metrics[i]` is member i's `metrics` from its
    warm_member.json (None when absent). Only numeric metrics become table columns, to keep the table readable.
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
        "```python",
        "import torch",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/model")',
        'model = AutoModelForSequenceClassification.from_pretrained("path/to/this/model").eval()',
        'inputs = tokenizer(["How do I boil an egg? Put it in boiling water for 8 minutes."], return_tensors="pt")',
        "with torch.no_grad():",
        "    reward = model(**inputs).logits[:, 0]",
        "```",
        "",
        f"Made with warm {merge_info.get('warm_version', '')}; merge details in `warm_merge.json`.",
        "",
    ]
    return "\n".join(lines)
