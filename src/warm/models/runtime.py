"""The runtime boundary with PyTorch and the Hugging Face trainers: the device, the compute precision, dtypes, and
the arguments every warm trainer passes (TRL's RewardConfig and RLOOConfig, transformers' TrainingArguments).

Precision: float32, or bfloat16 autocast where the hardware has it. bf16 autocast keeps the weights in float32 and
runs matrix products in bfloat16. Measured on this project's 2-core AMD EPYC (avx512_bf16) with MiniLM at length 128:
scoring 34 -> 66 sequences/s, training 6.5 -> 13.8 sequences/s. "auto" picks bf16 where the device supports it (CUDA
with bf16, or a CPU whose oneDNN build has bf16 kernels) and float32 elsewhere; the resolved value is what run files
record.
"""

from __future__ import annotations

import contextlib

import torch

from warm.defaults import PRECISIONS
from warm.errors import WarmError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_device() -> str:
    """cuda when there is one, else cpu: the one place warm chooses a device by itself."""
    return "cuda" if torch.cuda.is_available() else "cpu"


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


def policy_precision(precision: str, device: str | torch.device) -> str:
    """A policy's precision: "auto" is float32 on a CPU, where bf16 matrix products are slower for generation and
    for RL's small batches than float32 ones; elsewhere as `resolve_precision`."""
    if precision == "auto" and torch.device(device).type == "cpu":
        return "fp32"
    return resolve_precision(precision, device)


def resolve_dtype(dtype: str, device: str | torch.device) -> str:
    """Weights' dtype for sampling: "auto" is float32 on the CPU (see policy_precision), bfloat16 (or float16
    without bf16 support) on an accelerator."""
    if dtype == "auto":
        if torch.device(device).type == "cpu":
            return "float32"
        return "bfloat16" if bf16_supported(device) else "float16"
    if dtype not in DTYPES:
        raise WarmError(f"dtype {dtype!r}: expected auto, {', '.join(DTYPES)}")
    return dtype


def trainer_arguments(precision: str, device: str | torch.device, progress: bool, **specific) -> dict:
    """The arguments every warm trainer shares, for TrainingArguments and its TRL subclasses, overridden by `specific`.

    Set explicitly because the defaults break or slow training on the machines warm targets (measured with TRL 1.16
    and transformers 5 on CPU): bf16 is on by default in TRL (fails on a CPU without bf16), activation checkpointing
    is on by default in TRL (slow for small models; transformers 5 renamed the option, so the name it has is used),
    dataloader workers fork the process for nothing, reports go to whatever tracker is installed.
    """
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {"bf16": precision == "bf16", "fp16": False, "use_cpu": torch.device(device).type == "cpu",
            checkpointing: False, "report_to": [], "disable_tqdm": not progress, "dataloader_num_workers": 0,
            "save_strategy": "no", **specific}


def quiet(trainer, progress: bool) -> None:
    """Without progress bars transformers prints every log dict instead: --quiet means quiet."""
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
