"""Best-of-N candidate pools: rows of (prompt id, prompt, candidate text, optional gold), grouped by prompt.

Column names follow what such files already use, so the AlpacaEval gold pool (`instruction_id`, `instruction`,
`output`, `gold`) and `warm generate`'s samples (`prompt_id`, `prompt`, `candidate`) are both candidate files as
they are. Any other column (a generator name, say) is kept and passed through to the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from warm.apply.sampling.prompts import ID_KEYS, PROMPT_KEYS
from warm.errors import WarmError

ALIASES = {
    "prompt_id": ID_KEYS,
    "prompt": PROMPT_KEYS,
    "candidate": ("candidate", "output", "response", "completion"),
    "gold": ("gold",),
}


@dataclass
class CandidatePool:
    """Candidates in file order; `groups[k]` holds the row indices of the k-th prompt (in first-seen order)."""

    source: str
    prompt_ids: list
    prompts: list[str]
    candidates: list[str]
    gold: np.ndarray | None
    extra: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index: dict = {}
        for row, pid in enumerate(self.prompt_ids):
            index.setdefault(pid, []).append(row)
        self.unique_prompt_ids = list(index)
        self.groups = [np.asarray(rows) for rows in index.values()]

    def __len__(self) -> int:
        return len(self.candidates)

    def subset(self, rows: np.ndarray | list[int]) -> CandidatePool:
        rows = list(map(int, rows))
        return CandidatePool(self.source, [self.prompt_ids[i] for i in rows], [self.prompts[i] for i in rows],
                             [self.candidates[i] for i in rows], None if self.gold is None else self.gold[rows],
                             {k: [v[i] for i in rows] for k, v in self.extra.items()})

    def with_gold(self, gold: np.ndarray) -> CandidatePool:
        return CandidatePool(self.source, self.prompt_ids, self.prompts, self.candidates,
                             np.asarray(gold, dtype=np.float64), self.extra)


def _pick(source: str, columns: list[str], field_name: str, required: bool) -> str | None:
    for name in ALIASES[field_name]:
        if name in columns:
            return name
    if required:
        raise WarmError(f"{source}: no {field_name!r} column (looked for {', '.join(ALIASES[field_name])}; "
                        f"found {', '.join(columns) or 'none'})")
    return None


def _prompt_text(source: str, row: int, value) -> str:
    """A prompt as text: a string, or a conversation holding one user message (what best-of-N pools hold)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and "content" in value[0]:
        return str(value[0]["content"])
    raise WarmError(f"{source}: row {row}: prompt must be a string or a one-message conversation, got {type(value).__name__}")


def candidate_pool_from_rows(rows: list[dict], source: str = "<rows>") -> CandidatePool:
    """Build a pool from dict rows (the same columns and checks as a file)."""
    if not rows:
        raise WarmError(f"{source}: no candidate rows")
    columns = list(rows[0])
    keys = {name: _pick(source, columns, name, name != "gold") for name in ALIASES}
    if keys["prompt_id"] is None:
        raise WarmError(f"{source}: no prompt id column")
    prompts, candidates, ids = [], [], []
    for i, row in enumerate(rows):
        for name in ("prompt_id", "prompt", "candidate"):
            if row.get(keys[name]) is None:
                raise WarmError(f"{source}: row {i}: field {keys[name]!r} is missing")
        if not isinstance(row[keys["candidate"]], str):
            raise WarmError(f"{source}: row {i}: field {keys['candidate']!r} must be text")
        ids.append(row[keys["prompt_id"]])
        prompts.append(_prompt_text(source, i, row[keys["prompt"]]))
        candidates.append(row[keys["candidate"]])
    gold = None
    if keys["gold"] is not None:
        values = [row.get(keys["gold"]) for row in rows]
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            raise WarmError(f"{source}: row {missing[0]}: field 'gold' is missing ({len(missing)} rows without gold)")
        gold = np.asarray(values, dtype=np.float64)
        if not np.isfinite(gold).all():
            raise WarmError(f"{source}: field 'gold' holds a non-finite value at row {int(np.flatnonzero(~np.isfinite(gold))[0])}")
    used = {k for k in keys.values() if k}
    extra = {c: [row.get(c) for row in rows] for c in columns if c not in used}
    return CandidatePool(source, ids, prompts, candidates, gold, extra)


def load_candidates(path: str) -> CandidatePool:
    """Read a candidates file (jsonl[.gz], json, parquet, csv) with warm's one data reader."""
    from warm.data.sources import read_dataset

    dataset = read_dataset(path)
    return candidate_pool_from_rows(dataset.to_list(), source=path)
