"""Batched reward scoring: one reward model, or an ensemble of them (ENS in the WARM paper).

Speed: sequences are sorted by length and batched neighbours-together, so each batch is padded only to its own
longest sequence instead of the longest overall (on typical preference data this removes most of the padding
compute). Scores come back in the caller's order.

Correctness of padding: right padding with the tokenizer's pad token and an attention mask. BERT-style models
read the first ([CLS]) position; decoder-style models read the last non-pad token (transformers looks it up with
`config.pad_token_id`), so the score of a sequence does not depend on what it was batched with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from warm.data.tokenize import TokenizedPairs, encode_pair
from warm.errors import WarmError
from warm.models.loading import load_reward_model, load_tokenizer, resolve_model_path
from warm.models.precision import autocast, head_in_float32, resolve_precision
from warm.score.reductions import DEFAULT_LAM, check_reduction, reduce_scores


@runtime_checkable
class Scorer(Protocol):
    """What eval, best-of-N and the server need from a reward: one model or an ensemble look the same."""

    name: str
    tokenizer: PreTrainedTokenizerBase
    max_length: int

    def score_sequences(self, seqs: list[list[int]], progress: bool = False) -> np.ndarray: ...

    def score_texts(self, prompts: Sequence[str], responses: Sequence[str], progress: bool = False) -> np.ndarray: ...

    def score_pairs(self, pairs: TokenizedPairs, progress: bool = False) -> tuple[np.ndarray, np.ndarray]: ...


class _TextAndPairScoring:
    """`score_texts` and `score_pairs` written once, on top of a subclass's `score_sequences`."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int

    def score_sequences(self, seqs: list[list[int]], progress: bool = False) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def score_texts(self, prompts: Sequence[str], responses: Sequence[str], progress: bool = False) -> np.ndarray:
        """Rewards of (prompt, response) texts, tokenised by warm's one truncation rule (warm.data.tokenize)."""
        if len(prompts) != len(responses):
            raise WarmError(f"prompts and responses differ in length: {len(prompts)}, {len(responses)}")
        seqs = [encode_pair(self.tokenizer, p, r, self.max_length) for p, r in zip(prompts, responses)]
        return self.score_sequences(seqs, progress=progress)

    def score_pairs(self, pairs: TokenizedPairs, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(chosen rewards, rejected rewards); each unique sequence is scored once."""
        scores = self.score_sequences(pairs.sequences, progress=progress)
        return scores[pairs.chosen_index], scores[pairs.rejected_index]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise WarmError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
    return value


class RewardModelScorer(_TextAndPairScoring):
    """One Hugging Face reward model (an `AutoModelForSequenceClassification` with one output), in eval mode."""

    def __init__(
        self,
        path: str,
        *,
        batch_size: int = 32,
        max_length: int = 512,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        precision: str = "fp32",
    ) -> None:
        if batch_size < 1:
            raise WarmError(f"batch_size must be >= 1, got {batch_size}")
        self.path = str(path)
        self.name = Path(resolve_model_path(self.path)).name or self.path
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = torch.device(device or default_device())
        self.precision = resolve_precision(precision, self.device)
        self.tokenizer = load_tokenizer(self.path, trust_remote_code=trust_remote_code)
        model = load_reward_model(self.path, dtype=_as_dtype(dtype), trust_remote_code=trust_remote_code)
        if model.config.num_labels != 1:
            raise WarmError(f"{self.path}: a reward model has one output, this one has num_labels={model.config.num_labels}")
        # Decoder reward models find the last real token through config.pad_token_id and refuse batches without it.
        self.model = model.to(self.device).eval()
        if self.precision == "bf16":
            from warm.models.init import head_parameter_names

            head_in_float32(self.model, sorted({n.rsplit(".", 1)[0] for n in head_parameter_names(self.model)}))

    def __repr__(self) -> str:
        return f"RewardModelScorer({self.path!r}, device={self.device}, batch_size={self.batch_size})"

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


def tokenizer_signature(tokenizer: PreTrainedTokenizerBase) -> tuple:
    """What must match for two models to share one tokenisation: the vocabulary and the special tokens."""
    specials = tuple(sorted((str(k), str(v)) for k, v in tokenizer.special_tokens_map.items()))
    return specials, tokenizer.get_vocab()


def check_same_tokenizer(tokenizers: dict[str, PreTrainedTokenizerBase]) -> PreTrainedTokenizerBase:
    """The shared tokenizer of named models; WarmError naming the first model whose tokenizer differs.

    Ensembling and fair comparison both need one tokenisation: the same pair must be the same token sequence
    for every model (and members of one WARM run share their init's tokenizer by construction).
    """
    if not tokenizers:
        raise WarmError("no models given")
    names = list(tokenizers)
    reference = tokenizer_signature(tokenizers[names[0]])
    for name in names[1:]:
        signature = tokenizer_signature(tokenizers[name])
        if signature != reference:
            what = "special tokens" if signature[0] != reference[0] else "vocabulary"
            raise WarmError(f"{name}: its tokenizer differs from that of {names[0]} ({what}); models scored together must share one tokenizer")
    return tokenizers[names[0]]


class EnsembleScorer(_TextAndPairScoring):
    """Prediction ensembling (ENS): score with every member, then reduce (see warm.score.reductions).

    Members are scored one after another, each over all sequences, so only one member's activations are live.
    """

    def __init__(self, paths: list[str], reduction: str = "mean", lam: float = DEFAULT_LAM, **scorer_kwargs) -> None:
        if not paths:
            raise WarmError("an ensemble needs at least one member")
        check_reduction(reduction)
        self.paths = [str(p) for p in paths]
        self.reduction = reduction
        self.lam = float(lam)
        self.members = [RewardModelScorer(p, **scorer_kwargs) for p in self.paths]
        self.tokenizer = check_same_tokenizer({m.path: m.tokenizer for m in self.members})
        self.max_length = self.members[0].max_length
        lam_text = f"={self.lam:g}" if reduction == "mean_minus_std" else ""
        self.name = f"{reduction}{lam_text}:{','.join(m.name for m in self.members)}"

    def __repr__(self) -> str:
        return f"EnsembleScorer({self.paths!r}, reduction={self.reduction!r}, lam={self.lam})"

    def score_member_sequences(self, seqs: list[list[int]], progress: bool = False) -> np.ndarray:
        """[M, N] float32 rewards, one row per member."""
        return np.stack([m.score_sequences(seqs, progress=progress) for m in self.members])

    def score_sequences(self, seqs: list[list[int]], progress: bool = False) -> np.ndarray:
        member_scores = self.score_member_sequences(seqs, progress=progress)
        return reduce_scores(member_scores, self.reduction, self.lam).astype(np.float32)
