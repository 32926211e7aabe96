"""The scorer as the server uses it: built from a spec, called once per micro-batch, described for /v1/info.

Scores are the offline scorer's: each member encodes the pairs by its own input contract (warm.data.contract) and
scores them (`score_members`), then the ensemble's reduction applies (`warm.score.reductions.reduce_scores`, which is
exactly how `EnsembleScorer.score_texts` reduces). The member rows are always kept: they were computed anyway, and a
micro-batch mixes requests that asked for them with requests that did not.

A WARM merge served with `--members` (warm.score.uncertainty) is the exception: it costs one forward pass per item,
and its members score only the items whose request asked for them (their columns are NaN for the others).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import warm
from warm.errors import WarmError
from warm.fileio import read_json
from warm.models.loading import resolve_model_path
from warm.score.reductions import reduce_scores
from warm.score.spec import describe_spec, parse_scorer_spec
from warm.score.uncertainty import MemberUncertaintyScorer
from warm.serve.settings import ServeSettings
from warm.rundir import MERGE_FILE

# The parts of warm_merge.json a client may want to see (the rest is shard bookkeeping).
_MERGE_KEYS = ("method", "members", "weights", "init_fingerprint", "created", "warm_version")


def is_ensemble(scorer) -> bool:
    return hasattr(scorer, "reduction") and hasattr(scorer, "members")


def on_demand(scorer) -> bool:
    """A WARM model whose members score only when asked (`warm serve --members`)."""
    return isinstance(scorer, MemberUncertaintyScorer)


def make_score_fn(scorer) -> Callable[[list[tuple]], np.ndarray]:
    """fn(items) -> float32 [N, 1 + M]: column 0 the reward, then one column per member (M = 1 for one model).

    An item is (prompt, response) or (prompt, response, members wanted). Runs on the batcher's worker thread,
    tokenisation included, so the event loop never tokenises.
    """
    if on_demand(scorer):
        return _on_demand_score_fn(scorer)

    def score(pairs: list[tuple]) -> np.ndarray:
        members = np.asarray(scorer.score_members([p[0] for p in pairs], [p[1] for p in pairs]), dtype=np.float32)
        if is_ensemble(scorer):
            reward = reduce_scores(members, scorer.reduction, scorer.lam).astype(np.float32)
        else:
            reward = members[0]  # one model is its own single member
        return np.column_stack([reward, members.T])

    return score


def _on_demand_score_fn(scorer: MemberUncertaintyScorer) -> Callable[[list[tuple]], np.ndarray]:
    def score(items: list[tuple]) -> np.ndarray:
        rows = np.full((len(items), 1 + len(scorer.members)), np.nan, dtype=np.float32)
        rows[:, 0] = scorer.score_texts([item[0] for item in items], [item[1] for item in items])
        wanted = [i for i, item in enumerate(items) if len(item) > 2 and item[2]]
        if wanted:  # M more forward passes, for these items only
            rows[wanted, 1:] = scorer.score_members([items[i][0] for i in wanted], [items[i][1] for i in wanted]).T
        return rows

    return score


def member_scorers(scorer) -> list:
    return list(scorer.members) if is_ensemble(scorer) or on_demand(scorer) else [scorer]


def member_names(scorer) -> list[str]:
    """Short names (directory names) of the members; their paths when two share a directory name."""
    members = member_scorers(scorer)
    names = [getattr(m, "name", str(i)) for i, m in enumerate(members)]
    if len(set(names)) < len(names):
        names = [getattr(m, "path", name) for m, name in zip(members, names)]
    return names


def _merge_record(path: str | None) -> dict | None:
    """The WARM merge a model directory came from (its warm_merge.json), or None for any other model."""
    if path is None:
        return None
    merge_file = Path(resolve_model_path(path)) / MERGE_FILE
    if not merge_file.is_file():
        return None
    try:
        record = read_json(merge_file)
    except WarmError as exc:
        return {"error": str(exc)}
    return {key: record.get(key) for key in _MERGE_KEYS}


def describe(scorer, settings: ServeSettings) -> dict:
    """The /v1/info payload: what is served, how, and within which limits (computed once, at start-up)."""
    members = member_scorers(scorer)
    first = getattr(scorer, "warm", members[0])
    extra = {}
    if on_demand(scorer):  # the WARM model itself, then its members (scored only when a request asks)
        extra = {"merge": _merge_record(scorer.path), "forward_passes_with_members": 1 + len(members)}
    return {
        "spec": settings.spec or scorer.name,
        "name": scorer.name,
        "kind": "ensemble" if is_ensemble(scorer) else "model",
        "reduction": getattr(scorer, "reduction", None),
        "lam": getattr(scorer, "lam", None) if getattr(scorer, "reduction", None) == "mean_minus_std" else None,
        "members": [
            {"name": name, "path": getattr(m, "path", None), "merge": _merge_record(getattr(m, "path", None))}
            for name, m in zip(member_names(scorer), members)
        ],
        "forward_passes_per_item": 1 if on_demand(scorer) else len(members),
        **extra,
        "max_length": scorer.max_length,
        "contracts": [m.encoder.contract.to_json() for m in members if hasattr(m, "encoder")],
        "precision": getattr(first, "precision", None),
        "device": str(getattr(first, "device", "")) or None,
        "max_batch": settings.max_batch,
        "max_wait_ms": settings.max_wait_ms,
        "max_items": settings.max_items,
        "max_chars": settings.max_chars,
        "max_body_bytes": settings.max_body_bytes,
        "auth": settings.auth,
        "warm_version": warm.__version__,
    }


def load_scorer(spec: str, *, max_batch: int, max_length: int | None, precision: str, device: str | None,
                members: bool = False):
    """The scorer `spec` names, with one forward batch per micro-batch, warmed up.

    `max_length` None reads each model by its own contract (the length it was trained with); the scorer refuses a
    length beyond a model's positions at load time, not per request. The warm-up pays oneDNN's first-call set-up
    before the first client does. `members`: a WARM merge's members are loaded too, scored on demand.
    """
    options = {"batch_size": max_batch, "max_length": max_length, "precision": precision, "device": device}
    if members:
        if describe_spec(spec)["kind"] != "model":
            raise WarmError(f"--members: {spec!r} is an ensemble, whose members are scored with every item already "
                            "(ask /v1/score for return_members); --members is for one WARM merge directory")
        scorer = MemberUncertaintyScorer(spec, **options)
    else:
        scorer = parse_scorer_spec(spec, **options)
    make_score_fn(scorer)([("warm-up", "warm-up", True)])
    return scorer


def load_policy_format(policy: str):
    """The chat format of the RL policy named by `--policy-tokenizer` (a directory, or warm's packaged policy)."""
    from warm.models.loading import load_tokenizer
    from warm.models.policy import resolve_policy
    from warm.serve.rendered_queries import PolicyChatFormat

    return PolicyChatFormat.from_tokenizer(load_tokenizer(resolve_policy(policy)))
