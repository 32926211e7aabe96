"""Batched reward scoring: one reward model, or an ensemble of them (ENS in the WARM paper).

Speed: sequences are sorted by length and batched neighbours-together, so each batch is padded only to its own
longest sequence instead of the longest overall (on typical preference data this removes most of the padding
compute). Scores come back in the caller's order.

Correctness of padding: right padding with the tokenizer's pad token and an attention mask. BERT-style models
read the first ([CLS]) position; decoder-style models read the last non-pad token (transformers looks it up with
`config.pad_token_id`), so the score of a sequence does not depend on what it was batched with.

Inputs: each model turns (prompt, response) into token ids by its own input contract (warm.data.contract), read
from its directory; a model whose reward head was drawn on load (not in the checkpoint) is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm
from warm.data.contract import canonical_key
from warm.data.tokenize import TokenizedPairs, tokenize_pairs
from warm.errors import WarmError
from warm.models.loading import load_encoder, load_reward_model, resolve_model_path
from warm.models.runtime import autocast, default_device, head_in_float32, resolve_precision
from warm.score.reductions import DEFAULT_LAM, check_reduction, reduce_scores

if TYPE_CHECKING:
    from warm.data.formats import PreferenceData


@runtime_checkable
class Scorer(Protocol):
    """What eval, best-of-N, RL and the server need from a reward: one model or an ensemble look the same.

    Prompts and responses are text or lists of {role, content} messages (TRL's formats).
    """

    name: str
    max_length: int

    def score_texts(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray: ...

    def score_members(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray: ...

    def score_data(self, data: PreferenceData, progress: bool = False) -> tuple[np.ndarray, np.ndarray]: ...


def unique_items(prompts: Sequence, responses: Sequence) -> tuple[list, list, np.ndarray]:
    """(distinct prompts, distinct responses, index of each input among them): each distinct input is scored once."""
    if len(prompts) != len(responses):
        raise WarmError(f"prompts and responses differ in length: {len(prompts)}, {len(responses)}")
    index: dict[str, int] = {}
    where = np.empty(len(prompts), dtype=np.int64)
    unique_prompts, unique_responses = [], []
    for i, (prompt, response) in enumerate(zip(prompts, responses)):
        key = canonical_key(prompt, response)
        if key not in index:
            index[key] = len(unique_prompts)
            unique_prompts.append(prompt)
            unique_responses.append(response)
        where[i] = index[key]
    return unique_prompts, unique_responses, where


def _as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise WarmError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
    return value


class RewardModelScorer:
    """One Hugging Face reward model (an `AutoModelForSequenceClassification` with one output), in eval mode.

    `max_length` None scores by the model's own contract; a number overrides the contract's length (a different
    function from the one trained: for studies of length only). `allow_new_head` scores a model whose head was drawn
    on load (random rewards; for tests of plumbing only).
    """

    def __init__(
        self,
        path: str,
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        precision: str = "fp32",
        allow_new_head: bool = False,
    ) -> None:
        if batch_size < 1:
            raise WarmError(f"batch_size must be >= 1, got {batch_size}")
        self.path = str(path)
        self.name = Path(resolve_model_path(self.path)).name or self.path
        self.batch_size = batch_size
        self.device = torch.device(device or default_device())
        self.precision = resolve_precision(precision, self.device)
        self.encoder = load_encoder(self.path, max_length=max_length, trust_remote_code=trust_remote_code)
        self.tokenizer = self.encoder.tokenizer
        self.max_length = self.encoder.max_length
        model, info = load_reward_model(self.path, dtype=_as_dtype(dtype), trust_remote_code=trust_remote_code,
                                        output_loading_info=True)
        missing = sorted(k for k in info.get("missing_keys", []) if k)
        if missing and not allow_new_head:
            raise WarmError(f"{self.path}: {missing[0]}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''} "
                            "not in the checkpoint (drawn at random on load), so its rewards would be noise; "
                            "score a trained reward model (warm init + warm train)")
        if model.config.num_labels != 1:
            raise WarmError(f"{self.path}: a reward model has one output, this one has num_labels={model.config.num_labels}")
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and self.max_length > limit:
            raise WarmError(f"{self.path}: max length {self.max_length} exceeds the model's {limit} positions; "
                            f"use a max length of {limit} or less")
        # Decoder reward models find the last real token through config.pad_token_id and refuse batches without it.
        self.model = model.to(self.device).eval()
        if self.precision == "bf16":
            from warm.models.init import head_parameter_names

            head_in_float32(self.model, sorted({n.rsplit(".", 1)[0] for n in head_parameter_names(self.model)}))

    def __repr__(self) -> str:
        return f"RewardModelScorer({self.path!r}, device={self.device}, batch_size={self.batch_size})"

    @property
    def members(self) -> list[RewardModelScorer]:
        return [self]

    def tokenize(self, data: PreferenceData) -> TokenizedPairs:
        return tokenize_pairs(self.encoder, data)

    def score_texts(self, prompts: Sequence, responses: Sequence, progress: bool = False,
                    desc: str | None = None) -> np.ndarray:
        """Rewards of (prompt, response) pairs, each distinct one encoded (by the contract) and scored once."""
        unique_prompts, unique_responses, where = unique_items(prompts, responses)
        seqs, _ = self.encoder.encode_many(unique_prompts, unique_responses)
        return self.score_sequences(seqs, progress=progress, desc=desc)[where]

    def score_members(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray:
        """[1, N]: one model is its own only member."""
        return self.score_texts(prompts, responses, progress=progress)[None, :]

    def score_data(self, data: PreferenceData, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(chosen rewards, rejected rewards) of preference pairs."""
        return self.score_tokenized(self.tokenize(data), progress=progress)

    def score_tokenized(self, pairs: TokenizedPairs, progress: bool = False,
                        desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chosen rewards, rejected rewards) of pairs tokenised by this model's contract."""
        scores = self.score_sequences(pairs.sequences, progress=progress, desc=desc)
        return scores[pairs.chosen_index], scores[pairs.rejected_index]

    def score_sequences(self, seqs: list[list[int]], progress: bool = False, desc: str | None = None) -> np.ndarray:
        """Float32 rewards of token-id sequences, in the given order; batches are formed by length."""
        out = np.empty(len(seqs), dtype=np.float32)
        if not seqs:
            return out
        if any(len(s) == 0 for s in seqs):
            raise WarmError(f"{self.name}: cannot score an empty token sequence")
        too_long = max(len(s) for s in seqs)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and too_long > limit:
            raise WarmError(f"{self.name}: a sequence has {too_long} tokens, the model takes at most {limit} (lower max_length)")
        # Longest first: a batch that does not fit in memory fails at once, not at the end of a long run.
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id
        starts = range(0, len(order), self.batch_size)
        bar = tqdm(starts, desc=desc or self.name, unit="batch", disable=not progress, leave=False)
        with torch.inference_mode(), autocast(self.precision, self.device):
            for start in bar:
                idx = order[start : start + self.batch_size]
                width = len(seqs[idx[0]])  # sorted descending: the first is the longest in the batch
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, : len(seqs[i])] = torch.tensor(seqs[i], dtype=torch.long)
                    attention_mask[row, : len(seqs[i])] = 1
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
                ).logits
                out[idx] = logits[:, 0].float().cpu().numpy()
        return out


class EnsembleScorer:
    """Prediction ensembling (ENS): score with every member, then reduce (see warm.score.reductions).

    Members are scored one after another, each over all inputs by its own contract, so only one member's
    activations are live; members that share a tokenizer and contract share one tokenisation.
    """

    def __init__(self, paths: list[str], reduction: str = "mean", lam: float = DEFAULT_LAM, **scorer_kwargs) -> None:
        if not paths:
            raise WarmError("an ensemble needs at least one member")
        check_reduction(reduction)
        self.paths = [str(p) for p in paths]
        self.reduction = reduction
        self.lam = float(lam)
        self.members = [RewardModelScorer(p, **scorer_kwargs) for p in self.paths]
        self.max_length = max(m.max_length for m in self.members)
        lam_text = f"={self.lam:g}" if reduction == "mean_minus_std" else ""
        self.name = f"{reduction}{lam_text}:{','.join(m.name for m in self.members)}"

    def __repr__(self) -> str:
        return f"EnsembleScorer({self.paths!r}, reduction={self.reduction!r}, lam={self.lam})"

    def score_members(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray:
        """[M, N] float32 rewards, one row per member."""
        unique_prompts, unique_responses, where = unique_items(prompts, responses)
        encoded: dict[str, list[list[int]]] = {}
        rows = []
        for member in self.members:
            key = member.encoder.signature
            if key not in encoded:
                encoded[key] = member.encoder.encode_many(unique_prompts, unique_responses)[0]
            rows.append(member.score_sequences(encoded[key], progress=progress)[where])
        return np.stack(rows)

    def score_texts(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray:
        return reduce_scores(self.score_members(prompts, responses, progress=progress), self.reduction,
                             self.lam).astype(np.float32)

    def score_data(self, data: PreferenceData, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        n = len(data)
        rewards = self.score_texts(list(data.prompt) * 2, list(data.chosen) + list(data.rejected), progress)
        return rewards[:n], rewards[n:]
