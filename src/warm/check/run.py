"""`warm check MODEL_DIR`: score a sample through every consumer path and compare each with warm's own reward.

Per path: the largest absolute difference from warm's reward, how often it prefers the same response of a pair,
the Spearman correlation of the rewards, and a verdict decided beforehand from the model's input contract
(warm.check.paths): "compatible" (agrees within the tolerance), "FAILED" (expected to agree and does not, or
crashed), "not compatible" (by design, with what to use instead) or "skipped" (its package is missing here).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import numpy as np

from warm import __version__
from warm.check.paths import PATHS, Skipped
from warm.data.contract import CHAT_TEMPLATE
from warm.errors import WarmError
from warm.metrics import rank_correlation
from warm.rundir import timestamp

TOLERANCE = 1e-4  # fp32 through different batching and code paths: far below any reward difference that matters


def sample_pairs(data: str | None, limit: int):
    """(prompts, chosen, rejected) text of the sample: the file's first `limit` pairs, or the bundled OOD split."""
    from warm.data.demo import demo_path
    from warm.data.formats import load_preferences

    pairs = load_preferences(str(data or demo_path("test_ood")), limit=limit)
    for column in (pairs.prompt, pairs.chosen, pairs.rejected):
        if any(not isinstance(value, str) for value in column):
            raise WarmError(f"{pairs.source}: warm check takes text pairs (prompt, chosen, rejected as strings)")
    return pairs


def compare(reference: np.ndarray, rewards: np.ndarray, n_pairs: int, mask: np.ndarray) -> dict:
    """Differences on the inputs in `mask`; decisions on the pairs whose both sides are in it."""
    pair_mask = mask[:n_pairs] & mask[n_pairs:]
    ref_prefers = reference[:n_pairs] > reference[n_pairs:]
    prefers = rewards[:n_pairs] > rewards[n_pairs:]
    return {
        "max_abs_diff": float(np.max(np.abs(rewards[mask] - reference[mask]))) if mask.any() else None,
        "decision_agreement": float(np.mean(prefers[pair_mask] == ref_prefers[pair_mask])) if pair_mask.any() else None,
        "spearman": rank_correlation(reference[mask], rewards[mask]),
        "n_compared": int(mask.sum()),
    }


def run_check(model_dir: str, data: str | None = None, limit: int = 20, policy: str | None = None,
              tolerance: float = TOLERANCE, only: tuple[str, ...] = (), log=print) -> dict:
    """Run every path (or those named in `only`) on the sample; return the report (see `ok`)."""
    from warm.models.loading import resolve_model_path
    from warm.score.scorer import RewardModelScorer

    model_dir = resolve_model_path(model_dir)
    if not Path(model_dir).is_dir():
        raise WarmError(f"{model_dir}: not a model directory")
    unknown = sorted(set(only) - {p.name for p in PATHS})
    if unknown:
        raise WarmError(f"--path {unknown[0]}: unknown (paths: {', '.join(p.name for p in PATHS)})")
    sample = sample_pairs(data, limit)
    prompts, responses = list(sample.prompt) * 2, list(sample.chosen) + list(sample.rejected)
    scorer = RewardModelScorer(model_dir, precision="fp32", device="cpu")
    contract = scorer.encoder.contract
    reference = scorer.score_texts(prompts, responses).astype(np.float64)
    cut = np.asarray(scorer.encoder.encode_many(prompts, responses)[1])
    tokenizer = scorer.tokenizer
    adds_specials = tokenizer("a", add_special_tokens=True)["input_ids"] != tokenizer("a", add_special_tokens=False)["input_ids"]
    del scorer
    options = {"contract": contract, "policy": policy}
    results = []
    for path in PATHS:
        if only and path.name not in only:
            continue
        expected = path.expectation(contract, adds_specials)
        entry = {"path": path.name, "tool": path.tool, "expected_compatible": expected.compatible, "why": expected.why}
        log(f"checking {path.name} ...")
        start = time.perf_counter()
        try:
            rewards = np.asarray(path.run(model_dir, (prompts, responses), options), dtype=np.float64)
        except Skipped as exc:
            entry.update(status="skipped", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a consumer crashing is a finding to report, not to hide
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            entry.update(status="FAILED" if expected.compatible else "not compatible", error=message,
                         traceback=traceback.format_exc(limit=3))
        else:
            # TRL does not truncate: it is compared on the inputs that fit the model's length.
            mask = ~cut if path.name.startswith("trl") else np.ones(len(reference), dtype=bool)
            entry.update(compare(reference, rewards, len(sample), mask))
            agrees = entry["max_abs_diff"] is not None and entry["max_abs_diff"] <= tolerance
            entry["status"] = ("compatible" if agrees else "FAILED") if expected.compatible else "not compatible"
        entry["seconds"] = round(time.perf_counter() - start, 2)
        results.append(entry)
    return {
        "model": model_dir, "contract": contract.to_json(), "sample": sample.source, "n_pairs": len(sample),
        "n_cut": int(cut.sum()), "tolerance": tolerance, "policy": policy, "warm_version": __version__,
        "created": timestamp(), "paths": results,
        "legacy": contract.rendering != CHAT_TEMPLATE,
    }


def ok(report: dict) -> bool:
    """True when no path expected to agree failed to."""
    return not any(entry["status"] == "FAILED" for entry in report["paths"])


def markdown(report: dict) -> str:
    """The report as a markdown table (docs/results/compatibility.md is this, plus context)."""
    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    lines = ["| path | status | max abs diff | same decision | Spearman | compared | why |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for e in report["paths"]:
        why = e["why"] + (f" ({e['error']})" if e.get("error") else "")
        agreement = None if e.get("decision_agreement") is None else 100 * e["decision_agreement"]
        lines.append(f"| {e['tool']} | {e['status']} | {cell(e.get('max_abs_diff'), '.2e')} | "
                     f"{cell(agreement, '.1f')}% | {cell(e.get('spearman'), '.4f')} | "
                     f"{e.get('n_compared', '–')} | {why.replace('|', '/')} |")
    return "\n".join(lines).replace("| –% |", "| – |")
