"""Tokenising preference pairs for reward models, once, for every member, by the model's input contract.

Why not TRL's own tokenisation: its `max_length` drops over-long pairs instead of truncating them, and the contract
(warm.data.contract) is the one rule every consumer of the model follows. warm tokenises here and hands TRL
`chosen_ids` / `rejected_ids`, so all M members share one tokenisation and no pair is silently lost.

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from warm.data.contract import PairEncoder, canonical_key

if TYPE_CHECKING:
    from warm.data.formats import PreferenceData


@dataclass
class TokenizedPairs:
    """Pairs as indices into a list of unique sequences: each distinct (prompt, response) is scored once."""

    sequences: list[list[int]]
    chosen_index: np.ndarray  # [n_pairs] indices into sequences
    rejected_index: np.ndarray  # [n_pairs]
    truncated: int  # sequences that were cut to fit max_length

    @property
    def n_pairs(self) -> int:
        return len(self.chosen_index)

    def chosen_ids(self) -> list[list[int]]:
        return [self.sequences[i] for i in self.chosen_index]

    def rejected_ids(self) -> list[list[int]]:
        return [self.sequences[i] for i in self.rejected_index]


def tokenize_pairs(encoder: PairEncoder, data: PreferenceData) -> TokenizedPairs:
    """Tokenise preference pairs by `encoder`'s contract, each distinct (prompt, response) once.

    A row that cannot be rendered (no assistant turn, a template that refuses it) is a WarmError naming the row.
    """
    index: dict[str, int] = {}
    prompts, responses, rows, position = [], [], [], []
    for column in (data.chosen, data.rejected):
        for row, (prompt, response) in enumerate(zip(data.prompt, column)):
            key = canonical_key(prompt, response)
            if key not in index:
                index[key] = len(prompts)
                prompts.append(prompt)
                responses.append(response)
                rows.append(row + 1)
            position.append(index[key])
    sequences, cut = encoder.encode_many(prompts, responses, where=data.source, rows=rows)
    n = len(data)
    return TokenizedPairs(sequences, np.asarray(position[:n], dtype=np.int64), np.asarray(position[n:], dtype=np.int64),
                          int(sum(cut)))
