"""A fixed probe of an RL policy: its responses to the same prompts, with the same per-prompt random numbers at every
call, and each response's KL to the initial policy.

Two calls differ only because the policy changed (common random numbers: generate.py's RowSampler seeded by
`row_seed(seed, prompt_id, 0)`), so per-prompt differences between two probes measure the policy's drift, not the
noise of drawing other samples. The KL is a Monte-Carlo estimate on those responses: per response, the sum over its
tokens (EOS included, as TRL's completion mask) of log p_policy - log p_init, both at the sampling temperature (the
distributions the responses are drawn from; TRL's RLOO penalty uses the same tempered log-probabilities).

Used by `warm rl`'s held-out evaluation (warm.apply.rl.evaluation) and by the reward-hacking monitor
(warm.apply.rl.monitor).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from warm.apply.sampling.prompts import encode_prompt
from warm.apply.sampling.sampler import generation_config, row_seed, sample_batch


@torch.no_grad()
def response_logps(model, prompts: list[list[int]], responses: list[list[int]], temperature: float,
                   batch_size: int = 16) -> np.ndarray:
    """Per row, the sum over response tokens of log p(token | prompt, earlier tokens) with logits / temperature.

    Rows are right-padded (positions start at 0 for every row, as in left-padded generation, where transformers
    derives positions from the attention mask), so a row's value does not depend on its batch neighbours.
    """
    device = next(model.parameters()).device
    pad = 0
    out = np.zeros(len(prompts), dtype=np.float64)
    for start in range(0, len(prompts), batch_size):
        rows = list(range(start, min(start + batch_size, len(prompts))))
        seqs = [prompts[i] + responses[i] for i in rows]
        width = max(map(len, seqs))
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, seq in enumerate(seqs):
            input_ids[j, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention_mask[j, :len(seq)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        for j, i in enumerate(rows):
            n_prompt, n_response = len(prompts[i]), len(responses[i])
            if n_response == 0:
                continue
            # logits at position t predict token t + 1: the response's tokens are predicted from n_prompt - 1 on
            scores = logits[j, n_prompt - 1:n_prompt - 1 + n_response].float() / temperature
            targets = torch.tensor(responses[i], device=scores.device)
            picked = scores.gather(-1, targets[:, None])[:, 0] - torch.logsumexp(scores, dim=-1)
            out[i] = float(picked.sum())
    return out


def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@dataclass(frozen=True)
class ProbeSamples:
    """One probe: per prompt, the decoded response, its token ids, whether it ended with EOS, and its KL."""

    texts: list[str]
    ids: list[list[int]]
    finished: list[bool]
    kl: np.ndarray


class PolicyProbe:
    """`items` ({prompt_id, prompt}) sampled by `sample(model)`; `bind(trainer)` before the first call."""

    def __init__(self, items: list[dict], tokenizer, *, temperature: float, max_new_tokens: int, seed: int,
                 batch_size: int, source: str = "probe prompts") -> None:
        self.items, self.tokenizer = items, tokenizer
        self.temperature, self.max_new_tokens, self.batch_size = temperature, max_new_tokens, batch_size
        self.prompts = [item["prompt"] for item in items]
        self.encoded = [encode_prompt(tokenizer, item, source) for item in items]
        self.seeds = [row_seed(seed, item["prompt_id"], 0) for item in items]
        self.ref = None  # the initial policy (None with LoRA: the adapter is switched off instead)

    def bind(self, trainer) -> None:
        """Take the initial policy for the KL: TRL's reference model when it keeps one (a KL coefficient > 0, no
        LoRA), the base model under the LoRA adapter, else a frozen copy made now, before any update or checkpoint
        load."""
        if is_peft(trainer.model):
            self.ref = None
        elif getattr(trainer, "ref_model", None) is not None:
            self.ref = trainer.ref_model
        else:
            self.ref = copy.deepcopy(trainer.model).eval().requires_grad_(False)

    def sample(self, model) -> ProbeSamples:
        was_training = model.training
        model.eval()
        try:
            ids, finished = self._sample(model)
            texts = [self.tokenizer.decode(row[:-1] if done else row, skip_special_tokens=True)
                     for row, done in zip(ids, finished)]
            logp = response_logps(model, self.encoded, ids, self.temperature, self.batch_size)
            if self.ref is None:
                with model.disable_adapter():
                    ref_logp = response_logps(model, self.encoded, ids, self.temperature, self.batch_size)
            else:
                ref_logp = response_logps(self.ref, self.encoded, ids, self.temperature, self.batch_size)
        finally:
            model.train(was_training)
        return ProbeSamples(texts, ids, finished, logp - ref_logp)

    def _sample(self, model) -> tuple[list[list[int]], list[bool]]:
        device = next(model.parameters()).device
        settings = generation_config(model, self.tokenizer, self.max_new_tokens)
        responses, finished = [], []
        for start in range(0, len(self.encoded), self.batch_size):
            stop = start + self.batch_size
            for ids, done in sample_batch(model, self.encoded[start:stop], self.seeds[start:stop], self.temperature,
                                           1.0, settings, device):
                responses.append(ids)
                finished.append(done)
        return responses, finished
