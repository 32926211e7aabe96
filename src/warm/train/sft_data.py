"""The text `warm sft` trains on: (prompt, response) pairs from preference rows or from chosen text columns."""

from __future__ import annotations

import hashlib

from warm.data.contract import canonical_key
from warm.data.formats import load_preferences
from warm.data.sources import read_dataset
from warm.errors import WarmError
from warm.train.sft_config import SFTConfig

POOL_FIELDS = ("instruction", "output")


def load_sequences(config: SFTConfig, tokenizer) -> tuple[list[tuple[str, str]], dict]:
    """(prompt, response) texts from the data, and a description of where they came from."""
    dataset = read_dataset(config.data)
    found = list(dataset.column_names)
    if not config.text_fields and config.chosen_key in found and config.rejected_key in found:
        pairs = load_preferences(config.data, prompt_key=config.prompt_key, chosen_key=config.chosen_key,
                                 rejected_key=config.rejected_key, limit=config.limit)
        texts = [seq for p, c, r in zip(pairs.prompt, pairs.chosen, pairs.rejected) for seq in ((p, c), (p, r))]
        return texts, {"mode": "preference", "columns": [config.prompt_key, config.chosen_key, config.rejected_key],
                       "n_rows": len(pairs)}
    fields = list(config.text_fields) or next(
        (list(f) for f in (POOL_FIELDS, ("text",)) if all(c in found for c in f)), None)
    if fields is None:
        raise WarmError(f"{config.data}: no chosen/rejected, instruction/output or text columns (columns found: "
                        f"{', '.join(found)}); pass --text-fields")
    missing = [f for f in fields if f not in found]
    if missing:
        raise WarmError(f"{config.data}: missing column(s) {', '.join(missing)} (columns found: {', '.join(found)})")
    if config.limit is not None and config.limit < len(dataset):
        dataset = dataset.select(range(max(config.limit, 0)))
    columns = dataset.select_columns(fields).to_dict()
    texts = []
    for row in range(len(dataset)):
        values = [columns[f][row] for f in fields]
        bad = [f for f, v in zip(fields, values) if not isinstance(v, str)]
        if bad:
            raise WarmError(f"{config.data}: row {row + 1}: field '{bad[0]}' must be a string")
        texts.append(("\n".join(values[:-1]), values[-1]))
    if not texts:
        raise WarmError(f"{config.data}: no rows")
    return texts, {"mode": "fields", "columns": fields, "n_rows": len(texts)}


def texts_sha256(texts: list[tuple]) -> str:
    digest = hashlib.sha256()
    for prompt, response in texts:
        if isinstance(prompt, str) and isinstance(response, str):
            digest.update(prompt.encode() + b"\0" + response.encode() + b"\1")
        else:
            digest.update(canonical_key(prompt, response).encode() + b"\1")
    return digest.hexdigest()
