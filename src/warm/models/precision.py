"""Compute precision for training and scoring: float32, or bfloat16 autocast where the hardware has it.

bf16 autocast keeps the weights in float32 and runs matrix products in bfloat16. Measured on this project's
2-core AMD EPYC (avx512_bf16) with MiniLM at length 128: scoring 34 -> 66 sequences/s, training 6.5 -> 13.8
sequences/s. "auto" picks bf16 where the device supports it (CUDA with bf16, or a CPU whose oneDNN build has
bf16 kernels) and float32 elsewhere; the resolved value is what run files record.
"""

from __future__ import annotations

import contextlib

import torch

from warm.errors import WarmError

from warm.models import PRECISIONS  # noqa: E402


def bf16_supported(device: str | torch.device) -> bool:
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: str | torch.device) -> str:
    if precision not in PRECISIONS:
        raise WarmError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise WarmError(f"precision bf16: not supported on {device}")
    return precision


def head_in_float32(model, head_modules: list[str]) -> None:
    """Run the reward head outside autocast, in float32, on float32 inputs.

    Under bf16 autocast the head's output is bfloat16 too: rewards keep about 3 significant digits, which turns
    close pairs into ties and blurs WA-vs-ENS differences. The head is one small matrix, so float32 costs nothing.
    """
    for name in head_modules:
        module = model.get_submodule(name)
        forward = module.forward

        def float32_forward(*args, _forward=forward, _device=next(model.parameters()).device.type, **kwargs):
            with torch.autocast(_device, enabled=False):
                args = [a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
                return _forward(*args, **kwargs)

        module.forward = float32_forward


def autocast(precision: str, device: str | torch.device):
    """The context to run a forward pass in (precision already resolved)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
