"""The sampler: K answers per prompt from a causal LM, each (prompt_id, sample) drawing from its own generator.

Sampling is the Gumbel-max trick, argmax(logits / T + Gumbel noise) after top-p filtering, which draws exactly from
the tempered, top-p-truncated distribution, so `generate` runs greedily over our scores. HF's own sampling draws
from one global generator for the whole batch, so a row's sample would depend on its batch; here it depends only on
(seed, prompt_id, sample) and the model (`row_seed`).
"""

from __future__ import annotations

import copy
import hashlib
import json

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation import TopPLogitsWarper

from warm.data.contract import DECODER_TEMPLATE
from warm.errors import WarmError
from warm.models.loading import load_causal_lm, load_tokenizer


def row_seed(seed: int, prompt_id: str | int, sample: int) -> int:
    """The seed of one (prompt_id, sample) row: a hash, so neighbouring seeds give unrelated streams."""
    digest = hashlib.sha256(json.dumps([seed, prompt_id, sample]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: torch.Generator.manual_seed takes any of them


class RowSampler(LogitsProcessor):
    """Temperature, top-p, then Gumbel noise from one generator per row: argmax of the result is a sample."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float() / self.temperature
        if self.top_p is not None:
            scores = self.top_p(input_ids, scores)
        # Drawn on the CPU whatever the device: the same row gets the same noise on every machine.
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float32).tiny)))
        return scores + gumbel.to(scores.device)


def load_policy(path: str, items: list[dict], device: str, dtype: torch.dtype, trust_remote_code: bool):
    """Model, tokenizer (left padding, pad = EOS when missing) and how prompts are rendered."""
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"  # decoder-only: new tokens follow the last prompt token directly
    model = load_causal_lm(path, dtype=dtype, trust_remote_code=trust_remote_code).to(device)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise WarmError(f"{path}: the tokenizer has {len(tokenizer)} tokens, the model's embeddings fewer")
    rendering = "chat_template" if getattr(tokenizer, "chat_template", None) else "raw"
    if rendering == "raw" and any(not isinstance(item["prompt"], str) for item in items):
        tokenizer.chat_template = DECODER_TEMPLATE  # messages need some template: warm's plain "role: content" lines
        rendering = "raw text, fallback template for messages"
    return model, tokenizer, rendering


def generation_config(model, tokenizer, max_new_tokens: int):
    """The model's generation config, made greedy over RowSampler's scores; EOS ids from both model and tokenizer."""
    settings = copy.deepcopy(model.generation_config)
    eos = settings.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos.add(tokenizer.eos_token_id)
    if not eos:
        raise WarmError("the policy has no EOS token: samples would never finish")
    settings.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, min_p=None,
                    max_new_tokens=max_new_tokens, max_length=None, eos_token_id=sorted(eos),
                    pad_token_id=tokenizer.pad_token_id)
    return settings


def sample_batch(model, encoded: list[list[int]], seeds: list[int], temperature: float, top_p: float, settings,
                  device: str) -> list[tuple[list[int], bool]]:
    """(new token ids up to and including EOS, whether EOS came) for each left-padded prompt."""
    width = max(map(len, encoded))
    input_ids = torch.full((len(encoded), width), settings.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, width - len(ids):] = 1
    sampler = LogitsProcessorList([RowSampler(seeds, temperature, top_p)])
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                generation_config=settings, logits_processor=sampler)
    results = []
    for ids in output[:, width:].tolist():
        stop = next((i for i, token in enumerate(ids) if token in settings.eos_token_id), None)
        results.append((ids, False) if stop is None else (ids[:stop + 1], True))
    return results
