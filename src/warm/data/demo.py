"""The bundled demo data: AlpacaEval outputs paired by a GPT-4-turbo gold judge (see demo/README.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from warm.errors import WarmError

DEMO_SPLITS = ("train", "test_id", "test_ood")


def demo_path(split: str) -> Path:
    """Path of a bundled split: "train", "test_id" (held-out instructions) or "test_ood" (stronger generators)."""
    if split not in DEMO_SPLITS:
        raise WarmError(f"unknown demo split '{split}' (choose from {', '.join(DEMO_SPLITS)})")
    path = Path(str(files("warm.data").joinpath("demo", f"{split}.jsonl.gz")))
    if not path.is_file():
        raise WarmError(f"{path}: demo data missing from the package (rebuild: python scripts/build_demo_data.py)")
    return path
