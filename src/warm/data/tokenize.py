"""Tokenising (prompt, response) pairs for reward models, once, for every member.

Why not TRL's own tokenisation: TRL appends `eos_token` to raw text (BERT-style tokenizers have none), and its
`max_length` drops over-long pairs instead of truncating them. warm tokenises here and hands TRL `chosen_ids` /
`rejected_ids`, so all M members share one tokenisation and no pair is silently lost.

Truncation rule (README, "Truncation"): when prompt + response exceed `max_length`, the prompt is cut first, from
its start (the end of the prompt, nearest the answer, is kept). Only if the response alone does not fit is the
response cut, from its end.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase

from warm.errors import WarmError


def encode_pair(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_length: int) -> list[int]:
    """Token ids of one (prompt, response) sequence; see `encode_pair_checked`."""
    return encode_pair_checked(tokenizer, prompt, response, max_length)[0]


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


def tokenize_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    max_length: int,
) -> TokenizedPairs:
    """Tokenise rendered text pairs (see `warm.data.formats` for rendering), de-duplicating sequences."""
    if not (len(prompts) == len(chosen) == len(rejected)):
        raise WarmError(f"prompts, chosen and rejected differ in length: {len(prompts)}, {len(chosen)}, {len(rejected)}")
    index: dict[tuple[str, str], int] = {}
    sequences: list[list[int]] = []
    truncated = 0

    def lookup(prompt: str, response: str) -> int:
        nonlocal truncated
        key = (prompt, response)
        if key not in index:
            ids, was_cut = encode_pair_checked(tokenizer, prompt, response, max_length)
            truncated += int(was_cut)
            index[key] = len(sequences)
            sequences.append(ids)
        return index[key]

    chosen_index = np.array([lookup(p, c) for p, c in zip(prompts, chosen)], dtype=np.int64)
    rejected_index = np.array([lookup(p, r) for p, r in zip(prompts, rejected)], dtype=np.int64)
    return TokenizedPairs(sequences, chosen_index, rejected_index, truncated)
