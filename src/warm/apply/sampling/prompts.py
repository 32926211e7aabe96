"""The prompts a policy answers: read from a file, and rendered the way the policy reads them.

A prompts file (.jsonl, .jsonl.gz, .json, .parquet, .csv) has a prompt column (`prompt`, `instruction` or `query`),
text or {role, content} messages, and an optional id column (`prompt_id`, `instruction_id`, `id`); candidate pools
for best-of-N name their prompts the same way.
"""

from __future__ import annotations

import os

from warm.data.formats import field_kind
from warm.data.sources import error_summary, read_dataset
from warm.errors import WarmError

PROMPT_KEYS = ("prompt", "instruction", "query")  # the prompt column, first found
ID_KEYS = ("prompt_id", "instruction_id", "id")  # the prompt's id column, first found


def read_prompts(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """[{prompt_id, prompt}] from a .jsonl(.gz)/.json/.parquet/.csv file; prompt is text or a list of messages.

    The prompt column is `prompt` (or `instruction`, `query`), the id column `prompt_id` (or `instruction_id`,
    `id`); without one, a row's index is its id. `limit` keeps the first `limit` rows.
    """
    name = os.fspath(path)
    if limit is not None and limit < 1:
        raise WarmError(f"{name}: limit must be at least 1, got {limit}")
    dataset = read_dataset(name)
    found = list(dataset.column_names)
    prompt_key = next((key for key in PROMPT_KEYS if key in found), None)
    if prompt_key is None:
        raise WarmError(f"{name}: missing field 'prompt' (or '{PROMPT_KEYS[1]}', '{PROMPT_KEYS[2]}'; "
                        f"columns found: {', '.join(found) or 'none'})")
    if len(dataset) == 0:
        raise WarmError(f"{name}: no rows")
    id_key = next((key for key in ID_KEYS if key in found), None)
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(range(limit))
    columns = dataset.select_columns([k for k in (prompt_key, id_key) if k]).to_dict()
    prompts, seen = [], {}
    for i, prompt in enumerate(columns[prompt_key]):
        field_kind(name, i + 1, prompt_key, prompt)  # text or {role, content} messages, else a one-line error
        prompt_id = i if id_key is None else columns[id_key][i]
        if isinstance(prompt_id, bool) or not isinstance(prompt_id, (str, int)):
            raise WarmError(f"{name}: row {i + 1}: field '{id_key}' must be a string or an integer, "
                            f"got {type(prompt_id).__name__}")
        if prompt_id in seen:
            raise WarmError(f"{name}: row {i + 1}: {id_key} {prompt_id!r} repeats row {seen[prompt_id]}")
        seen[prompt_id] = i + 1
        prompts.append({"prompt_id": prompt_id, "prompt": prompt})
    return prompts


def encode_prompt(tokenizer, item: dict, source) -> list[int]:
    """Token ids of one prompt: through the chat template when there is one (it adds BOS itself), else raw text."""
    prompt = item["prompt"]
    if isinstance(prompt, str) and not getattr(tokenizer, "chat_template", None):
        return tokenizer(prompt, add_special_tokens=True)["input_ids"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # noqa: BLE001 - jinja raises assorted types for malformed conversations
        raise WarmError(f"{os.fspath(source)}: prompt {item['prompt_id']!r}: cannot apply the chat template "
                        f"({error_summary(exc)})") from None
    return tokenizer(text, add_special_tokens=False)["input_ids"]
