"""Tokenising preference pairs for reward models, once, for every member, by the model's input contract.

Why not TRL's own tokenisation: its `max_length` drops over-long pairs instead of truncating them, and the contract
(warm.data.contract) is the one rule every consumer of the model follows. warm tokenises here and hands TRL
`chosen_ids` / `rejected_ids`, so all M members share one tokenisation and no pair is silently lost.

`encode_pair_checked` is the encoding of models made before the contract existed (rendering "pair_v0"): prompt and
response as the tokenizer's two segments; when they exceed `max_length` the prompt is cut first, from its start,
and only a response too long on its own is cut, from its end. Kept so those models are scored as they were trained.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from transformers import PreTrainedTokenizerBase

from warm.data.contract import PairEncoder, canonical_key
from warm.errors import WarmError

if TYPE_CHECKING:
    from warm.data.formats import PreferenceData


def encode_pair_checked(
    tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_length: int
) -> tuple[list[int], bool]:
    """(token ids, whether anything was cut) of one (prompt, response) sequence, at most `max_length` long.

    Special tokens come from the tokenizer's own post-processor (`[CLS] p [SEP] r [SEP]` for BERT, `<bos> p r`
    for Llama). Tokenizers whose template ends without a special token get EOS appended, so the reward is
    read at a fixed marker (as TRL does for decoders).
    """
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None or not hasattr(backend, "post_process"):
        raise WarmError(f"{type(tokenizer).__name__}: warm needs a fast (Rust-backed) tokenizer")
    prompt_enc = backend.encode(prompt, add_special_tokens=False) if prompt else None
    if prompt_enc is not None and len(prompt_enc.ids) == 0:
        prompt_enc = None
    response_enc = backend.encode(response, add_special_tokens=False)
    n_special = backend.num_special_tokens_to_add(prompt_enc is not None)
    append_eos = tokenizer.eos_token_id is not None and not _template_ends_special(tokenizer, prompt_enc is not None)
    budget = max_length - n_special - int(append_eos)
    if budget < 1:
        raise WarmError(f"max_length={max_length} leaves no room for text after {n_special + int(append_eos)} special tokens")
    n_prompt = len(prompt_enc.ids) if prompt_enc is not None else 0
    overflow = n_prompt + len(response_enc.ids) - budget
    was_cut = overflow > 0
    if overflow > 0:
        cut = min(overflow, n_prompt)
        if cut == n_prompt:
            prompt_enc = None
        elif cut:
            prompt_enc.truncate(n_prompt - cut, direction="left")
        overflow -= cut
        if overflow > 0:
            response_enc.truncate(len(response_enc.ids) - overflow, direction="right")
        if prompt_enc is None:  # the single-sequence template may carry fewer special tokens
            extra = backend.num_special_tokens_to_add(False) - n_special
            if extra > 0:
                response_enc.truncate(max(1, len(response_enc.ids) - extra), direction="right")
    ids = backend.post_process(response_enc if prompt_enc is None else prompt_enc,
                               None if prompt_enc is None else response_enc, add_special_tokens=True).ids
    if append_eos:
        ids = ids + [tokenizer.eos_token_id]
    return ids, was_cut


# The template's shape is a property of the tokenizer, probed once per tokenizer (and pair/single), not per sequence.
_ENDS_SPECIAL: "weakref.WeakKeyDictionary[PreTrainedTokenizerBase, dict[bool, bool]]" = weakref.WeakKeyDictionary()


def _template_ends_special(tokenizer: PreTrainedTokenizerBase, pair: bool) -> bool:
    known = _ENDS_SPECIAL.setdefault(tokenizer, {})
    if pair not in known:
        backend = tokenizer._tokenizer
        probe_a = backend.encode("a", add_special_tokens=False)
        probe_b = backend.encode("b", add_special_tokens=False)
        ids = backend.post_process(probe_a, probe_b if pair else None, add_special_tokens=True).ids
        known[pair] = bool(ids) and ids[-1] in set(tokenizer.all_special_ids)
    return known[pair]


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
