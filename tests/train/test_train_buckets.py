"""Bucketed forward passes: the cheapest grouping of rows, and the same logits and gradients as one padded pass."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import make_tiny_model_dir, make_tiny_policy_dir
from transformers import AutoModelForSequenceClassification

from warm.train.buckets import BucketedForward, length_buckets


def cost(groups, lengths, overhead):
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


@pytest.mark.parametrize("lengths", [[5, 40, 6, 39, 7, 41], [10] * 5, [3, 100], [1, 2, 4, 8, 16, 32, 64]])
def test_grouping_is_the_cheapest_contiguous_one(lengths):
    overhead = 20
    groups = length_buckets(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = min(cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], lengths, overhead)
               for k in range(len(order)) for cuts in itertools.combinations(range(1, len(order)), k))
    assert cost(groups, lengths, overhead) == best


def padded(rows: list[list[int]], pad: int, left: bool = False):
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span], mask[i, span] = torch.tensor(row), 1
    return ids, mask


@pytest.mark.parametrize("family, left", [("encoder", False), ("decoder", False), ("decoder", True)])
def test_buckets_give_the_logits_and_gradients_of_one_pass(tmp_path, family, left):
    torch.manual_seed(0)
    rows = [torch.randint(5, 60, (n,)).tolist() for n in (4, 30, 5, 29, 6, 31, 12)]
    if family == "encoder":
        model = AutoModelForSequenceClassification.from_pretrained(make_tiny_model_dir(tmp_path / "m"))
        ids, mask = padded(rows, 0)
    else:
        path = make_tiny_policy_dir(tmp_path / "p")  # a Llama: its reward is read at the last real token
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        model.config.pad_token_id = 0
        ids, mask = padded(rows, 0, left=left)
    model.eval()  # no dropout: the two computations must agree to float precision
    whole = model(input_ids=ids, attention_mask=mask).logits
    (whole ** 2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    bucketed = BucketedForward(model, overhead=8)
    out = bucketed(input_ids=ids, attention_mask=mask, use_cache=False).logits
    (out ** 2).sum().backward()
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-4)
    assert len(length_buckets(mask.sum(1).tolist(), 8)) > 1  # the batch really was cut
