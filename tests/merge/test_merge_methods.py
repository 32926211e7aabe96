"""The averaging math alone, on plain tensors (no files)."""

from __future__ import annotations

import pytest
import torch

from warm.errors import WarmError
from warm.merge.methods import MERGE_METHODS, linear


def _rand(seed: int, shape=(7, 5), dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def test_registry_is_one_explicit_dict():
    assert MERGE_METHODS == {"linear": linear}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_identical_members_return_the_input_bit_for_bit(dtype, count):
    t = _rand(0, dtype=dtype)
    merged = linear([t.clone() for _ in range(count)], [1.0 / count] * count)
    assert merged.dtype == dtype
    assert torch.equal(merged, t)


def test_uniform_average_is_the_mean():
    tensors = [_rand(seed) for seed in range(5)]
    merged = linear(tensors, [0.2] * 5)
    torch.testing.assert_close(merged, torch.stack(tensors).mean(0), atol=1e-6, rtol=0)


def test_weights_are_applied_exactly():
    a, b = _rand(1), _rand(2)
    merged = linear([a, b], [0.25, 0.75])
    assert torch.equal(merged, (0.25 * a.double() + 0.75 * b.double()).float())


def test_bf16_is_averaged_in_float32_and_stored_in_bf16():
    a, b = _rand(1, dtype=torch.bfloat16), _rand(2, dtype=torch.bfloat16)
    merged = linear([a, b], [0.5, 0.5])
    assert merged.dtype == torch.bfloat16
    assert torch.equal(merged, torch.stack([a.float(), b.float()]).mean(0).to(torch.bfloat16))


def test_integer_buffers_must_be_equal_and_are_returned_unchanged():
    ids = torch.arange(12).unsqueeze(0)
    assert torch.equal(linear([ids, ids.clone()], [0.5, 0.5]), ids)
    with pytest.raises(WarmError, match="differs between member 0 and member 1"):
        linear([ids, ids + 1], [0.5, 0.5])


def test_mismatched_inputs_are_refused():
    with pytest.raises(WarmError, match="cannot average"):
        linear([_rand(0), _rand(0, shape=(5, 7))], [0.5, 0.5])
    with pytest.raises(WarmError, match="2 tensors but 1 weights"):
        linear([_rand(0), _rand(1)], [1.0])


def test_unnormalised_weights_are_refused():
    with pytest.raises(WarmError, match="sum to 1"):
        linear([_rand(0), _rand(1)], [1.0, 3.0])
