"""The `warm eval` driver: pairwise accuracy of reward models, ensembles and their members, with bootstrap intervals.

Work is shared as far as it can be. Each model reads its inputs by its own input contract (warm.data.contract);
each split is tokenised once per distinct contract (the M members of one run share one); each distinct model
directory is loaded once and scores each unique sequence of each split once, even when it is both a named model
and an ensemble member, or a member of several ensembles; ensemble rewards are reductions of those member scores
(warm.score.reductions), the same numbers `EnsembleScorer` would give. Only one model is in memory at a time.

Returned schema (JSON-able; accuracies are fractions in [0, 1]; an empty subset has None for its numbers):

    {"config": {"max_length" (None: each model's own), "batch_size", "n_boot", "seed", "alpha", "tokenizer": DIR,
                "contracts": {MODEL DIR: warm_contract.json payload as read},
                "scorers": {NAME: {"kind": "model", "path": DIR}
                                | {"kind": "ensemble", "members": [NAME...], "reduction": R, "lam": F}
                                | {"kind": "member", "path": DIR, "ensemble": ENS}}},
     "splits": {SPLIT: {
         "source": STR, "n_pairs": INT, "n_sequences": INT (unique sequences scored),
         "n_truncated": INT (unique sequences cut to the first model's max length),
         "n_length_adversarial": INT (pairs whose chosen response is strictly shorter, in characters),
         "n_corrupted": INT | None (None: the split has no `corrupted` column),
         "length_baseline": SUMMARY (the longer response wins; ties half),
         "scorers": {NAME: {**SUMMARY, "length_adversarial": SUMMARY,
                            "corrupted": SUMMARY, "clean": SUMMARY}},      # the last two only with `corrupted`
         "comparisons": {"MODEL - ENS": DIFF, "MODEL - best member of ENS": {**DIFF, "best_member": NAME}}}}}

    SUMMARY = {"accuracy", "lo", "hi", "n"}    DIFF = {"diff", "lo", "hi"} (difference of accuracies, paired bootstrap)

Ensemble members appear as scorers named "ENS/basename(DIR)". "corrupted" and "clean" are measured against the
labels as stored: on corrupted pairs (labels swapped on purpose, WARM section 5) a high accuracy means the model
memorised the wrong label, so lower is better there; "clean" is the accuracy on the untouched pairs.
Comparisons pit each named model that is not an ensemble member (e.g. the WARM average) against each ensemble
and against that ensemble's best member on the same split (chosen after the fact, so an optimistic baseline).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from warm.data.tokenize import TokenizedPairs
from warm.errors import WarmError
from warm.metrics import (
    accuracy_summary,
    subset_masks,
    length_baseline_correct,
    paired_bootstrap_diff,
    pairwise_correct,
)
from warm.models.loading import resolve_model_path
from warm.score.reductions import DEFAULT_LAM, check_reduction, reduce_scores
from warm.models.runtime import default_device, resolve_precision
from warm.score.scorer import RewardModelScorer

if TYPE_CHECKING:
    from warm.data.formats import PreferenceData

ALPHA = 0.05


def _model_key(path: str) -> str:
    """Two spellings of one directory are one model: score it once."""
    return os.path.realpath(resolve_model_path(path))


def _plan(models: dict[str, str], ensembles: dict[str, tuple[list[str], str, float]]) -> tuple[dict, dict, dict]:
    """(scorers config, single scorer name -> model key, ensemble name -> (member names, reduction, lam))."""
    if not models and not ensembles:
        raise WarmError("nothing to evaluate: give at least one model or ensemble")
    scorers: dict[str, dict] = {}
    singles: dict[str, str] = {}
    reduced: dict[str, tuple[list[str], str, float]] = {}

    def add(name: str, entry: dict) -> None:
        if not name or name in scorers:
            raise WarmError(f"scorer name {name!r} is {'empty' if not name else 'given twice'}; names must be unique")
        scorers[name] = entry

    for name, path in models.items():
        add(name, {"kind": "model", "path": str(path)})
        singles[name] = _model_key(str(path))
    for ens, spec in ensembles.items():
        members, reduction, lam = spec
        check_reduction(reduction)
        if not members:
            raise WarmError(f"ensemble {ens!r} has no members")
        lam = DEFAULT_LAM if lam is None else float(lam)
        bases = [Path(resolve_model_path(str(m))).name for m in members]
        names = [f"{ens}/{b}" if bases.count(b) == 1 else f"{ens}/{b}#{i}" for i, b in enumerate(bases)]
        add(ens, {"kind": "ensemble", "members": names, "reduction": reduction, "lam": lam})
        for member_name, path in zip(names, members):
            add(member_name, {"kind": "member", "path": str(path), "ensemble": ens})
            singles[member_name] = _model_key(str(path))
        reduced[ens] = (names, reduction, lam)
    return scorers, singles, reduced


def corrupted_mask(name: str, data: PreferenceData) -> np.ndarray | None:
    """The split's corrupted-label mask, or None (PreferenceData has already checked column lengths)."""
    if len(data.prompt) == 0:
        raise WarmError(f"split {name!r} has no pairs")
    return None if data.corrupted is None else np.asarray(data.corrupted, dtype=bool)


def evaluate(
    models: dict[str, str],
    ensembles: dict[str, tuple[list[str], str, float]],
    splits: dict[str, PreferenceData],
    *,
    max_length: int | None = None,
    batch_size: int = 32,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    return_scores: bool = False,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    precision: str = "fp32",
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, dict[str, dict[str, np.ndarray]]]]:
    """Evaluate named models and ensembles (name -> (member dirs, reduction, lam)) on named splits.

    Returns the metrics dict (schema in the module docstring); with `return_scores`, also
    {split: {scorer name: {"chosen": rewards [n_pairs], "rejected": rewards [n_pairs]}}}, kept out of the metrics.
    """
    scorers, singles, reduced = _plan(models, ensembles)
    if not splits:
        raise WarmError("no splits to evaluate on")
    corrupted = {name: corrupted_mask(name, data) for name, data in splits.items()}
    paths: dict[str, str] = {}  # model key -> the first path given for it
    labels: dict[str, str] = {}  # model key -> a scorer name, for messages
    for name, key in singles.items():
        paths.setdefault(key, scorers[name]["path"])
        labels.setdefault(key, name)

    member_keys = {singles[m] for members, _, _ in reduced.values() for m in members}
    challengers = [name for name in models if singles[name] not in member_keys]

    used_precision = resolve_precision(precision, device or default_device())
    # One model in memory at a time; each scores every split, tokenised once per distinct contract.
    tokenized: dict[tuple[str, str], TokenizedPairs] = {}
    pair_scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    contracts: dict[str, dict] = {}
    first_pairs: dict[str, TokenizedPairs] = {}
    for key, path in paths.items():
        scorer = RewardModelScorer(path, batch_size=batch_size, max_length=max_length, device=device, dtype=dtype,
                                   trust_remote_code=trust_remote_code, precision=used_precision)
        contracts[path] = scorer.encoder.contract.to_json()
        pair_scores[key] = {}
        for split, data in splits.items():
            memo = (scorer.encoder.signature, split)
            if memo not in tokenized:
                tokenized[memo] = scorer.tokenize(data)
            first_pairs.setdefault(split, tokenized[memo])
            pair_scores[key][split] = scorer.score_tokenized(tokenized[memo], progress=progress,
                                                             desc=f"{labels[key]} · {split}")
        del scorer

    config = {"max_length": max_length, "batch_size": batch_size, "precision": used_precision,
              "n_boot": n_boot, "seed": seed, "alpha": ALPHA,
              "tokenizer": next(iter(paths.values())), "contracts": contracts, "scorers": scorers}
    metrics: dict[str, Any] = {"config": config, "splits": {}}
    all_scores: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for split, data in splits.items():
        pairs = first_pairs[split]
        scores = {name: dict(zip(("chosen", "rejected"), pair_scores[key][split])) for name, key in singles.items()}
        for ens, (members, reduction, lam) in reduced.items():
            scores[ens] = {side: reduce_scores(np.stack([scores[m][side] for m in members]), reduction, lam)
                           for side in ("chosen", "rejected")}
        scores = {name: scores[name] for name in scorers}
        all_scores[split] = scores
        metrics["splits"][split] = _split_metrics(data, pairs, corrupted[split], scores, challengers, reduced,
                                                  n_boot=n_boot, seed=seed)
    return (metrics, all_scores) if return_scores else metrics


def _split_metrics(
    data: PreferenceData,
    pairs: TokenizedPairs,
    corrupted: np.ndarray | None,
    scores: dict[str, dict[str, np.ndarray]],
    challengers: list[str],
    reduced: dict[str, tuple[list[str], str, float]],
    *,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    def summary(values: np.ndarray) -> dict:
        return accuracy_summary(values, n_boot=n_boot, seed=seed, alpha=ALPHA)

    masks = subset_masks(data.chosen_texts(), data.rejected_texts(), corrupted)
    adversarial = masks["length_adversarial"]
    reported = ("length_adversarial", "corrupted", "clean")  # the eval table's subsets (length_balanced: experiments)
    correct = {name: pairwise_correct(s["chosen"], s["rejected"]) for name, s in scores.items()}
    results: dict[str, dict] = {}
    for name, values in correct.items():
        entry = summary(values)
        entry.update({subset: summary(values[masks[subset]]) for subset in reported if subset in masks})
        results[name] = entry

    comparisons: dict[str, dict] = {}
    for model in challengers:  # named models that are not ensemble members (e.g. the WARM average)
        for ens, (members, _, _) in reduced.items():
            comparisons[f"{model} - {ens}"] = paired_bootstrap_diff(correct[model], correct[ens], n_boot=n_boot,
                                                                    seed=seed, alpha=ALPHA)
            best = max(members, key=lambda m: results[m]["accuracy"])  # first one wins a tie
            diff = paired_bootstrap_diff(correct[model], correct[best], n_boot=n_boot, seed=seed, alpha=ALPHA)
            comparisons[f"{model} - best member of {ens}"] = {**diff, "best_member": best}

    return {
        "source": getattr(data, "source", None),
        "n_pairs": pairs.n_pairs,
        "n_sequences": len(pairs.sequences),
        "n_truncated": pairs.truncated,
        "n_length_adversarial": int(adversarial.sum()),
        "n_corrupted": None if corrupted is None else int(corrupted.sum()),
        "length_baseline": summary(length_baseline_correct(data.chosen_texts(), data.rejected_texts())),
        "scorers": results,
        "comparisons": comparisons,
    }
