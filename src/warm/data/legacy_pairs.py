"""The encoding of reward models warm made before the input contract existed (rendering "pair_v0"), kept so those
models are scored as they were trained: prompt and response as the tokenizer's two segments (`[CLS] p [SEP] r [SEP]`
for BERT, `<bos> p r` for Llama); when they exceed `max_length` the prompt is cut first, from its start, and only a
response too long on its own is cut, from its end.
"""

from __future__ import annotations

import weakref

from transformers import PreTrainedTokenizerBase

from warm.errors import WarmError


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
