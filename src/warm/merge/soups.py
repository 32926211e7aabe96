"""Model soups over WARM members, chosen on validation pairs (Wortsman et al. 2022, "Model soups", ICML).

  top-M:  rank members by validation pairwise accuracy and average the best M uniformly.
  greedy: the paper's GreedySoup (Algorithm 1): visit members by validation accuracy, best first; start from the
          best and add a member only if the uniform average of the soup with it is at least as accurate on the
          validation pairs as the soup without it (>=, as in Algorithm 1: ties keep the more averaged soup).
WARM itself is the uniform soup of all members (Ramé et al. 2024); soups trade a validation set for robustness
to bad members. The selection logic is pure (functions of `accuracy_of(subset) -> float`), so it is tested on
constructed accuracies; `ValidationAccuracy` supplies the real one by building each candidate soup with
merge_models in a temporary directory and scoring it with the shared scorer and pairwise metric.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from warm.errors import WarmError
from warm.fileio import scratch_directory

AccuracyOf = Callable[[tuple[str, ...]], float]
Log = Callable[[str], None]
SOUPS = ("top_m", "greedy")
# merge_models options that shape the final output only: candidates are temporary, quiet, full-weight merges.
_FINAL_ONLY = ("force", "max_shard_bytes", "lora_output", "progress")


def rank_members(members: Sequence[str], accuracy_of: AccuracyOf) -> list[tuple[str, float]]:
    """(member, validation accuracy of the member alone), best first; ties keep the given order."""
    if not members:
        raise WarmError("a soup needs at least one member")
    if len(set(members)) != len(members):
        raise WarmError(f"{next(m for m in members if list(members).count(m) > 1)}: member given twice")
    scored = [(m, float(accuracy_of((m,)))) for m in members]
    return sorted(scored, key=lambda item: -item[1])  # sorted is stable


def top_m_soup(members: Sequence[str], k: int, accuracy_of: AccuracyOf, log: Log | None = None) -> dict:
    """The `k` members with the best validation accuracy (the soup record: ranking and selection)."""
    if not 1 <= k <= len(members):
        raise WarmError(f"--top-m {k}: must be between 1 and the number of members ({len(members)})")
    ranking = rank_members(members, accuracy_of)
    selected = [m for m, _ in ranking[:k]]
    for i, (member, accuracy) in enumerate(ranking):
        _log(log, f"{member}: validation accuracy {accuracy:.4f}{' (selected)' if i < k else ''}")
    return {"kind": "top_m", "k": k, "ranking": _ranking(ranking), "selected": selected}


def greedy_soup(members: Sequence[str], accuracy_of: AccuracyOf, log: Log | None = None) -> dict:
    """GreedySoup (Wortsman et al. 2022, Algorithm 1) with every decision recorded.

    Each decision: the member, the validation accuracy of the candidate soup (the current soup plus the member;
    for the first, the member alone), whether it was accepted, and the soup's accuracy after the decision.
    """
    ranking = rank_members(members, accuracy_of)
    best, best_accuracy = ranking[0]
    selected = [best]
    decisions = [{"member": best, "candidate_accuracy": best_accuracy, "accepted": True,
                  "soup_accuracy": best_accuracy}]
    _log(log, f"{best}: best member alone, accuracy {best_accuracy:.4f}: soup starts with it")
    for member, _ in ranking[1:]:
        candidate = float(accuracy_of(tuple(selected) + (member,)))
        accepted = candidate >= best_accuracy  # "does not drop" (Algorithm 1 uses >=)
        if accepted:
            selected.append(member)
            best_accuracy = candidate
        decisions.append({"member": member, "candidate_accuracy": candidate, "accepted": accepted,
                          "soup_accuracy": best_accuracy})
        _log(log, f"{member}: soup with it {candidate:.4f} -> {'accepted' if accepted else 'rejected'}")
    return {"kind": "greedy", "ranking": _ranking(ranking), "decisions": decisions, "selected": selected,
            "accuracy": best_accuracy}


def _ranking(ranking: list[tuple[str, float]]) -> list[dict]:
    return [{"member": m, "accuracy": a} for m, a in ranking]


def _log(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)


class ValidationAccuracy:
    """`accuracy_of` on real members: pairwise accuracy (warm.metrics) of the soup's uniform average.

    A single full-weight member is scored in place; any other subset (including one LoRA adapter, which needs its
    base) is merged with merge_models into `work_dir`, scored, and deleted. Results are cached per subset.
    """

    def __init__(self, val: str, members: Sequence[str], work_dir: Path, max_length: int | None = None,
                 batch_size: int = 32, limit: int | None = None, precision: str = "auto", **merge_kwargs):
        from warm.data.formats import load_preferences
        from warm.data.tokenize import tokenize_pairs
        from warm.models.loading import load_encoder

        data = load_preferences(val, limit=limit)
        if len(data) == 0:
            raise WarmError(f"{val}: no validation pairs")
        # Members of one run share their contract (the merge checks it), so the soups read what the members read.
        self.encoder = load_encoder(str(members[0]), max_length=max_length)
        self.pairs = tokenize_pairs(self.encoder, data)
        self.work_dir = Path(work_dir)
        self.scorer_kwargs = {"max_length": max_length, "batch_size": batch_size, "precision": precision}
        self.merge_kwargs = merge_kwargs
        self.cache: dict[frozenset, float] = {}

    def __call__(self, subset: tuple[str, ...]) -> float:
        key = frozenset(subset)
        if key not in self.cache:
            self.cache[key] = self._measure(subset)
        return self.cache[key]

    def _measure(self, subset: tuple[str, ...]) -> float:
        from warm.metrics import pairwise_correct
        from warm.merge.lora import is_adapter_dir
        from warm.merge.merge import merge_models
        from warm.score.scorer import RewardModelScorer

        merged = None
        if len(subset) == 1 and not is_adapter_dir(subset[0]):
            path = Path(subset[0])
        else:
            merged = path = Path(tempfile.mkdtemp(prefix="candidate-", dir=self.work_dir)) / "soup"
            merge_models(list(subset), path, progress=False, **self.merge_kwargs)
        try:
            scorer = RewardModelScorer(str(path), **self.scorer_kwargs)
            if scorer.encoder.signature != self.encoder.signature:
                raise WarmError(f"{path}: reads its inputs differently from {subset[0]} (tokenizer or input contract)")
            chosen, rejected = scorer.score_tokenized(self.pairs)
            del scorer
            return float(pairwise_correct(chosen, rejected).mean())
        finally:
            if merged is not None:
                shutil.rmtree(merged.parent, ignore_errors=True)


def soup_merge(members: Sequence[str], out: str | Path, kind: str, val: str, k: int | None = None,
               max_length: int | None = None, batch_size: int = 32, limit: int | None = None, log: Log | None = None,
               **merge_kwargs) -> dict:
    """Choose a soup of `members` on the validation pairs in `val`, merge it uniformly into `out`.

    `merge_kwargs` go to merge_models for the candidates and the final soup (force, allow_mixed_init, LoRA options,
    ...). warm_merge.json gets the selection under "soup". Returns the warm_merge.json payload.
    """
    if kind not in SOUPS:
        raise WarmError(f"soup {kind!r}: expected one of {', '.join(SOUPS)}")
    members = [str(m) for m in members]
    out = Path(out)
    if out.exists() and not merge_kwargs.get("force"):
        raise WarmError(f"{out}: already exists (pass --force to overwrite)")  # before any candidate is scored
    with scratch_directory(out, "soup") as work_dir:
        candidate_kwargs = {key: v for key, v in merge_kwargs.items() if key not in _FINAL_ONLY}
        accuracy_of = ValidationAccuracy(val, members, work_dir, max_length=max_length, batch_size=batch_size,
                                         limit=limit, **candidate_kwargs)
        if kind == "top_m":
            record = top_m_soup(members, k if k is not None else len(members), accuracy_of, log)
        else:
            record = greedy_soup(members, accuracy_of, log)
    record.update(val=str(val), n_pairs=accuracy_of.pairs.n_pairs, max_length=accuracy_of.encoder.max_length)
    from warm.merge.merge import merge_models

    return merge_models(record["selected"], out, extra_info={"soup": record}, **merge_kwargs)
