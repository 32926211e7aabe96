"""Reading and writing preference data in TRL's formats (https://huggingface.co/docs/trl/dataset_formats).

Every source becomes one `PreferenceData`: (prompt, chosen, rejected) as TRL has them, text or lists of messages.
Nothing is rendered here: a model's input contract (warm.data.contract) turns each (prompt, response) into its
inputs, so a conversational row and a text row with the same turns are the same input to every model.

Formats accepted, row by row:
- explicit prompt, standard: `prompt`, `chosen`, `rejected` are strings;
- implicit prompt, standard: only `chosen` and `rejected`, whose longest common prefix (cut at a whitespace
  boundary, see `split_common_prefix`) becomes the prompt;
- conversational, explicit or implicit prompt: lists of `{role, content}` messages; the turns the responses share
  become the prompt (TRL's `maybe_extract_prompt`).
Optional `margin` (float) and `corrupted` (bool) columns are kept; other extra columns are ignored.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from warm.data.contract import response_text
from warm.data.sources import read_dataset, write_jsonl
from warm.errors import WarmError

@dataclass
class PreferenceData:
    """Preference pairs: (prompt[i], chosen[i]) is preferred over (prompt[i], rejected[i]).

    Each value is text or a list of {role, content} messages (TRL's conversational format).
    """

    source: str  # file path or dataset name, for error messages and metadata
    prompt: list  # "" for implicit-prompt text with no common prefix, [] for conversations without shared turns
    chosen: list  # the preferred response
    rejected: list
    margin: list[float] | None = None
    corrupted: list[bool] | None = None  # True where chosen/rejected were swapped by warm.data.corrupt
    corruption: dict | None = None  # how `corrupted` was drawn ({"fraction", "seed"}), when known

    def __post_init__(self) -> None:
        lengths = {len(self.prompt), len(self.chosen), len(self.rejected)}
        lengths |= {len(col) for col in (self.margin, self.corrupted) if col is not None}
        if len(lengths) != 1:
            raise WarmError(f"{self.source}: prompt, chosen, rejected, margin and corrupted differ in length")

    def __len__(self) -> int:
        return len(self.chosen)

    def subset(self, indices: Iterable[int]) -> PreferenceData:
        """The pairs at `indices` (in that order), as new data from the same source."""
        idx = [int(i) for i in indices]

        def pick(col):
            return None if col is None else [col[i] for i in idx]

        return PreferenceData(self.source, pick(self.prompt), pick(self.chosen), pick(self.rejected),
                              pick(self.margin), pick(self.corrupted), self.corruption)

    def chosen_texts(self) -> list[str]:
        """The words of each chosen response (what length baselines compare)."""
        return [response_text(value) for value in self.chosen]

    def rejected_texts(self) -> list[str]:
        return [response_text(value) for value in self.rejected]

    def to_records(self) -> list[dict]:
        """One dict per pair (prompt, chosen, rejected, and margin / corrupted when present): TRL's explicit format."""
        records = []
        for i in range(len(self)):
            row: dict[str, Any] = {"prompt": self.prompt[i], "chosen": self.chosen[i], "rejected": self.rejected[i]}
            if self.margin is not None:
                row["margin"] = self.margin[i]
            if self.corrupted is not None:
                row["corrupted"] = self.corrupted[i]
            records.append(row)
        return records


def load_preferences(
    source: str | os.PathLike,
    *,
    prompt_key: str = "prompt",
    chosen_key: str = "chosen",
    rejected_key: str = "rejected",
    split: str = "train",
    limit: int | None = None,
) -> PreferenceData:
    """Load preference pairs from a local file (.jsonl, .jsonl.gz, .json, .parquet, .csv) or a hub dataset name.

    `*_key` name the user's columns. A missing `prompt_key` column is the implicit-prompt format when it is the
    default "prompt", an error otherwise. `split` applies to hub datasets (a local file is one split).
    `limit` keeps the first `limit` rows.
    """
    name = os.fspath(source)
    if limit is not None and limit < 1:
        raise WarmError(f"{name}: limit must be at least 1, got {limit}")
    dataset = read_dataset(name, split)
    found = list(dataset.column_names)
    for key in (chosen_key, rejected_key) + ((prompt_key,) if prompt_key != "prompt" else ()):
        if key not in found:
            raise WarmError(f"{name}: missing column '{key}' (columns found: {', '.join(found) or 'none'})")
    if len(dataset) == 0:
        raise WarmError(f"{name}: no rows")
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(range(limit))
    wanted = [k for k in (prompt_key, chosen_key, rejected_key, "margin", "corrupted") if k in found]
    columns = dataset.select_columns(list(dict.fromkeys(wanted))).to_dict()
    keys = (prompt_key if prompt_key in found else None, chosen_key, rejected_key)

    prompts, chosen, rejected = [], [], []
    for i in range(len(dataset)):
        values = [None if key is None else columns[key][i] for key in keys]
        p, c, r = _split_row(name, i + 1, keys, values)
        prompts.append(p)
        chosen.append(c)
        rejected.append(r)
    same = sum(c == r for c, r in zip(chosen, rejected))
    if same:
        warnings.warn(f"{name}: {same} pair(s) with identical chosen and rejected responses (they carry no preference)",
                      stacklevel=2)
    margin = _typed_column(name, columns, "margin", (int, float), "a number")
    corrupted = _typed_column(name, columns, "corrupted", (bool,), "true or false")
    return PreferenceData(name, prompts, chosen, rejected,
                          None if margin is None else [float(m) for m in margin], corrupted)


def save_preferences(data: PreferenceData, path: str | os.PathLike) -> Path:
    """Write `data.to_records()` as JSON lines (.jsonl or .jsonl.gz), atomically; `load_preferences` reads it back."""
    return write_jsonl(path, data.to_records())


def split_common_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) of an implicit-prompt text pair: the prompt is their common prefix.

    TRL's `extract_prompt` cuts at the first differing character ("It is bl" + "ue" / "ack"); here the cut moves
    back to a whitespace boundary present in both texts so no word is split, the whitespace goes to the responses
    (as in TRL), and each response keeps at least one character. No such boundary: the prompt is "".
    """
    cut = max(0, min(len(os.path.commonprefix([chosen, rejected])), len(chosen) - 1, len(rejected) - 1))
    while cut > 0 and not (chosen[cut].isspace() and rejected[cut].isspace()):
        cut -= 1
    while cut > 0 and chosen[cut - 1].isspace():
        cut -= 1
    return chosen[:cut], chosen[cut:], rejected[cut:]


# --- rows --------------------------------------------------------------------------------------------------------


def _split_row(source: str, row: int, keys: Sequence[str | None], values: list) -> tuple:
    """(prompt, chosen, rejected) of one row, `row` counted from 1; keys[0] is None for implicit prompts."""
    kinds = [None if key is None else field_kind(source, row, key, value) for key, value in zip(keys, values)]
    if "messages" not in kinds:
        prompt, chosen, rejected = values
        return (prompt, chosen, rejected) if keys[0] is not None else split_common_prefix(chosen, rejected)
    if kinds[1] != "messages" or kinds[2] != "messages":
        raise WarmError(f"{source}: row {row}: mixes text and messages "
                        f"('{keys[1]}' and '{keys[2]}' must both be message lists)")
    from trl.data_utils import maybe_extract_prompt

    example = {"chosen": values[1], "rejected": values[2]}
    if keys[0] is not None:
        example["prompt"] = values[0]
    # TRL drops a text prompt beside conversational responses and extracts the shared turns instead.
    example = maybe_extract_prompt(example)
    prompt = example.get("prompt") or []
    for key, response in (("chosen", example["chosen"]), ("rejected", example["rejected"])):
        if not response or response[-1]["role"] != "assistant":
            raise WarmError(f"{source}: row {row}: field '{keys[1] if key == 'chosen' else keys[2]}' has no assistant "
                            "turn to score (the last message must be the assistant's)")
    return prompt, example["chosen"], example["rejected"]


def field_kind(source: str, row: int, key: str, value: Any) -> str:
    """'text' or 'messages', or a WarmError naming the row and field."""
    if value is None:
        raise WarmError(f"{source}: row {row}: field '{key}' is null")
    if isinstance(value, str):
        return "text"
    if isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        return "messages"
    raise WarmError(f"{source}: row {row}: field '{key}' must be a string or a non-empty list of "
                    f"{{role, content}} messages, got {type(value).__name__}")


def _typed_column(source: str, columns: dict, key: str, types: tuple, what: str) -> list | None:
    if key not in columns:
        return None
    for i, value in enumerate(columns[key]):
        if value is None:
            raise WarmError(f"{source}: row {i + 1}: field '{key}' is null")
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise WarmError(f"{source}: row {i + 1}: field '{key}' must be {what}, got {type(value).__name__}")
    return list(columns[key])
