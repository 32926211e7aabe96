"""One string names any scorer, so `warm eval`, `warm serve` and best-of-N take the same argument.

Forms:
    DIR                          one reward model (a local HF directory, or a packaged alias such as
                                 `packaged:all-MiniLM-L6-v2`)
    DIR1,DIR2,...                an ensemble, reduced by the mean (ENS in the WARM paper)
    REDUCTION:DIR1,DIR2,...      an ensemble with a named reduction: mean | min | mean_minus_std
    mean_minus_std=0.5:DIR1,...  mean_minus_std with lambda 0.5 (default 1.0)

A whole spec that is an existing path is always one model (so directories whose names contain ',' or ':' work).
The text before the first ':' is read as a reduction when it looks like one (`name` or `name=number`) and the first
member is not itself an existing path or alias.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from warm.errors import WarmError
from warm.models.loading import resolve_model_path
from warm.score.reductions import DEFAULT_LAM, REDUCTIONS
from warm.score.scorer import EnsembleScorer, RewardModelScorer, Scorer


# What a reduction prefix looks like: `name` or `name=number`. Anything else before ':' (a '/' or '.', say) is a path.
_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(=[^/\\]*)?")


def _is_model_ref(text: str) -> bool:
    return Path(text).exists() or resolve_model_path(text) != text


def describe_spec(spec: str) -> dict:
    """Parse a scorer spec without loading anything: {"kind": "model"|"ensemble", "members", "reduction", "lam"}.

    A single model has members [DIR], reduction None and lam None. Syntax errors raise WarmError naming the spec.
    """
    text = spec.strip()
    if not text:
        raise WarmError("empty scorer spec")
    if _is_model_ref(text):
        return {"kind": "model", "members": [text], "reduction": None, "lam": None}
    reduction, lam, body = "mean", None, text
    head, sep, rest = text.partition(":")
    if sep and _HEAD.fullmatch(head.strip()) and not _is_model_ref(text.split(",")[0]):
        name, eq, lam_text = head.strip().partition("=")
        if name not in REDUCTIONS:
            raise WarmError(f"scorer spec {spec!r}: unknown reduction {name!r} (valid: {', '.join(REDUCTIONS)})")
        if eq:
            if name != "mean_minus_std":
                raise WarmError(f"scorer spec {spec!r}: only mean_minus_std takes a lambda, not {name!r}")
            try:
                lam = float(lam_text)
            except ValueError:
                raise WarmError(f"scorer spec {spec!r}: lambda {lam_text!r} is not a number") from None
            if not math.isfinite(lam):
                raise WarmError(f"scorer spec {spec!r}: lambda must be finite, got {lam_text!r}")
        reduction, body = name, rest
    members = [m.strip() for m in body.split(",")]
    if any(not m for m in members):
        raise WarmError(f"scorer spec {spec!r}: empty member (stray ',' or nothing after ':')")
    if len(members) == 1 and not sep:
        return {"kind": "model", "members": members, "reduction": None, "lam": None}
    if lam is None and reduction == "mean_minus_std":
        lam = DEFAULT_LAM
    return {"kind": "ensemble", "members": members, "reduction": reduction, "lam": lam}


def reduction_of(info: dict) -> tuple[str, float]:
    """(reduction, lambda) that reduce a described spec's member rewards: a single model is its own mean, and a
    lambda not given is DEFAULT_LAM (only mean_minus_std reads it)."""
    return info["reduction"] or "mean", DEFAULT_LAM if info["lam"] is None else info["lam"]


def parse_scorer_spec(spec: str, **scorer_kwargs) -> Scorer:
    """Build the scorer a spec names (kwargs go to each RewardModelScorer: batch_size, max_length, device, dtype...).

    Every member must be an existing directory (or a packaged alias); the error names the one that is not.
    """
    info = describe_spec(spec)
    for member in info["members"]:
        if not Path(resolve_model_path(member)).is_dir():
            raise WarmError(f"scorer spec {spec!r}: {member!r} is not a model directory")
    if info["kind"] == "model":
        return RewardModelScorer(info["members"][0], **scorer_kwargs)
    reduction, lam = reduction_of(info)
    return EnsembleScorer(info["members"], reduction=reduction, lam=lam, **scorer_kwargs)
