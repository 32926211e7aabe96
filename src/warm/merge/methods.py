"""Averaging methods: small typed functions over tensors, with no IO (the IO lives in tensor_io.py).

A method receives the same-named tensor from every member and the members' weights (already normalised to sum
to 1 by the caller) and returns the merged tensor in the members' dtype. WARM (Ramé et al. 2024, arXiv
2401.12187) uses the plain weighted average of reward models fine-tuned from one shared init: the "uniform soup"
of model soups (Wortsman et al. 2022), which the linear mode connectivity of such fine-tunings makes work.

New methods are added to MERGE_METHODS below and nowhere else (mergekit keeps one registry module too); nothing
registers itself by being imported.
"""

from __future__ import annotations

from typing import Callable

import torch

from warm.errors import WarmError

MergeMethod = Callable[[list[torch.Tensor], list[float]], torch.Tensor]


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a weighted sum of `dtype` tensors is accumulated in: wider than the storage where one exists.

    Half-precision inputs (bf16, fp16, fp8) accumulate in float32, float32 and float64 inputs in float64, so
    rounding happens essentially once, at the final cast, and the result is the correctly rounded weighted mean
    in practice. The cost is one temporary tensor of twice the size for the tensor being merged, not per member.
    """
    if dtype in (torch.float32, torch.float64):
        return torch.float64
    return torch.float32


def linear(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted average sum_i w_i * t_i, returned in the inputs' dtype (model soups' uniform/weighted soup).

    Integer and bool tensors are buffers (position ids, token type ids), not learned weights: averaging them is
    meaningless, so they must be equal across members and are returned unchanged. Raises WarmError otherwise;
    the caller prefixes the tensor's name.
    """
    if not tensors:
        raise WarmError("nothing to average: no tensors")
    if len(tensors) != len(weights):
        raise WarmError(f"{len(tensors)} tensors but {len(weights)} weights")
    if abs(sum(weights) - 1.0) > 1e-6:  # the anchored sum below relies on it
        raise WarmError(f"weights must be normalised to sum to 1, got sum {sum(weights)}")
    first = tensors[0]
    for other in tensors[1:]:
        if other.shape != first.shape or other.dtype != first.dtype:
            raise WarmError(
                f"cannot average {tuple(first.shape)} {first.dtype} with {tuple(other.shape)} {other.dtype}"
            )
    if not (first.is_floating_point() or first.is_complex()):
        for i, other in enumerate(tensors[1:], start=1):
            if not torch.equal(first, other):
                raise WarmError(f"non-float ({first.dtype}) tensor differs between member 0 and member {i}")
        return first
    # Anchored at the first member: sum_i w_i t_i = t_0 + sum_{i>0} w_i (t_i - t_0) when the weights sum to 1.
    # Identical members then return t_0 bit for bit in any dtype (a plain sum of three copies times 1/3 can be an
    # ulp off), and rounding errors scale with the members' small differences, not with the parameters' size.
    acc_dtype = accumulation_dtype(first.dtype) if first.is_floating_point() else first.dtype
    anchor = first.to(acc_dtype)
    total = anchor.clone()
    for tensor, weight in zip(tensors[1:], weights[1:]):
        if weight:  # in place: one accumulator and one difference, never a stack of M upcast copies
            total.add_(tensor.to(acc_dtype) - anchor, alpha=float(weight))
    return total.to(first.dtype)


# The registry: method name -> function. The CLI's --method choices come from these keys.
MERGE_METHODS: dict[str, MergeMethod] = {"linear": linear}
