"""`warm generate`: K sampled answers per prompt from a Hugging Face causal LM (the candidates of best-of-N).

OUT/samples.jsonl holds one row per sample, {prompt_id, prompt, sample, candidate, n_tokens, finished}; its
prompt_id, prompt and candidate columns make it a best-of-N candidates file as it is (no gold column).
OUT/generate.json holds the config and, once a run finishes, its metrics.

Determinism and resume. A sample depends on (seed, prompt_id, sample index) and the model, not on what ran before
or beside it:
- every (prompt_id, sample) row draws its randomness from its own torch.Generator seeded by a hash of the three
  (`row_seed`). Sampling is the Gumbel-max trick, argmax(logits / T + Gumbel noise) after top-p filtering, which
  draws exactly from the tempered, top-p-truncated distribution, so `generate` runs greedily over our scores. HF's
  own sampling draws from one global generator for the whole batch, so a row's sample would depend on its batch;
- batches are fixed by position in the row list (prompt order x sample index, `batch_size` rows each), so a
  resumed run pads and computes every batch exactly as an uninterrupted run does (bit-identical floats);
- samples.jsonl is also the cache: each batch is appended as complete lines, flushed and fsynced. A restart drops
  a truncated last line (a crash mid-write), skips rows already present, and regenerates a batch with any row
  missing in full (writing only the missing rows), so the file ends up byte-identical to an uninterrupted run's.
`--limit N` selects the first N prompts and may change between runs: its rows are a prefix of the full run's,
so a larger limit later resumes. (Only a batch cut by the limit is computed with fewer rows than in a full run;
its rows can differ from the full run's by float rounding, i.e. practically never.)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation import TopPLogitsWarper

from warm.apply.candidates import ALIASES
from warm.data.contract import DECODER_TEMPLATE
from warm.data.formats import field_kind
from warm.data.sources import error_summary, read_dataset
from warm.errors import WarmError
from warm.fileio import read_json, sha256_file, write_json
from warm.models.loading import load_causal_lm, load_tokenizer
from warm.models.policy import resolve_policy

# One list of column names for prompts files and candidate pools.
PROMPT_KEYS = ALIASES["prompt"]
ID_KEYS = ALIASES["prompt_id"]
SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "generate.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Config fields that may change on resume: which prompts are used, and where the same policy was found.
UNCHECKED = ("limit", "policy_path")


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


def row_seed(seed: int, prompt_id: str | int, sample: int) -> int:
    """The seed of one (prompt_id, sample) row: a hash, so neighbouring seeds give unrelated streams."""
    digest = hashlib.sha256(json.dumps([seed, prompt_id, sample]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: torch.Generator.manual_seed takes any of them


class RowSampler(LogitsProcessor):
    """Temperature, top-p, then Gumbel noise from one generator per row: argmax of the result is a sample."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float() / self.temperature
        if self.top_p is not None:
            scores = self.top_p(input_ids, scores)
        # Drawn on the CPU whatever the device: the same row gets the same noise on every machine.
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float32).tiny)))
        return scores + gumbel.to(scores.device)


def generate_samples(
    policy: str,
    prompts: str | os.PathLike,
    out: str | os.PathLike,
    samples: int,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.9,
    top_p: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
    limit: int | None = None,
    dtype: str = "auto",
    device: str | None = None,
    force: bool = False,
    trust_remote_code: bool = False,
    progress: bool = True,
    on_batch: Callable[[list[dict]], None] | None = None,
) -> dict:
    """Sample `samples` answers per prompt into OUT/samples.jsonl, resuming what is there; return generate.json's
    payload, plus `"up_to_date": True` when every row was there already (its metrics are then the earlier run's).
    `on_batch` is called with the new rows of each batch once they are on disk."""
    _check_settings(samples, max_new_tokens, temperature, top_p, batch_size)
    items = read_prompts(prompts, limit)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype_name = resolve_dtype(dtype, device)
    policy_path = resolve_policy(policy)
    prompts_path = Path(prompts)
    config = {
        "policy": policy, "policy_path": policy_path, "prompts": os.fspath(prompts),
        "prompts_sha256": sha256_file(prompts_path) if prompts_path.is_file() else None,
        "samples": samples, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
        "seed": seed, "batch_size": batch_size, "dtype": dtype_name, "device": device, "limit": limit,
        "trust_remote_code": trust_remote_code,
    }
    out = Path(out)
    previous = _claim(out, config, force)
    done = read_samples(out / SAMPLES_FILE)
    rows = [(item, k) for item in items for k in range(samples)]
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    todo = [batch for batch in batches if any((item["prompt_id"], k) not in done for item, k in batch)]
    if not todo:  # nothing to add: keep the metrics of the run that wrote the rows
        metrics = previous.get("metrics") or {"rows": len(rows), "generated_rows": 0, "tokens_generated": 0}
        return {**_finish(out, config, metrics), "up_to_date": True}

    started = time.perf_counter()
    model, tokenizer, rendering = load_policy(policy_path, items, device, DTYPES[dtype_name], trust_remote_code)
    encoded = {item["prompt_id"]: encode_prompt(tokenizer, item, prompts) for item in items}
    settings = generation_config(model, tokenizer, max_new_tokens)
    missing = sum(1 for item, k in rows if (item["prompt_id"], k) not in done)
    generated, tokens, sampling_started = 0, 0, time.perf_counter()
    bar = tqdm(total=len(rows), initial=len(rows) - missing, desc="generating", unit="sample", disable=not progress)
    with open(out / SAMPLES_FILE, "ab") as handle, bar:
        for batch in todo:
            outputs = sample_batch(model, [encoded[item["prompt_id"]] for item, _ in batch],
                                    [row_seed(seed, item["prompt_id"], k) for item, k in batch],
                                    temperature, top_p, settings, device)
            new = [_row(tokenizer, item, k, ids, finished)
                   for (item, k), (ids, finished) in zip(batch, outputs) if (item["prompt_id"], k) not in done]
            _append(handle, new)
            generated += len(new)
            tokens += sum(row["n_tokens"] for row in new)
            bar.update(len(new))
            if on_batch is not None:
                on_batch(new)
    now = time.perf_counter()
    return _finish(out, config, {
        "rows": len(rows), "generated_rows": generated, "tokens_generated": tokens,
        "tokens_per_second": round(tokens / max(now - sampling_started, 1e-9), 2),
        "rows_per_second": round(generated / max(now - sampling_started, 1e-9), 3),
        "wall_seconds": round(now - started, 3), "rendering": rendering})


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: float32 on the CPU (bf16 matmuls there are slower than fp32 for generation), bfloat16 (or float16
    without bf16 support) on an accelerator."""
    if dtype == "auto":
        if torch.device(device).type == "cpu":
            return "float32"
        from warm.models.precision import bf16_supported

        return "bfloat16" if bf16_supported(device) else "float16"
    if dtype not in DTYPES:
        raise WarmError(f"dtype {dtype!r}: expected auto, {', '.join(DTYPES)}")
    return dtype


def read_samples(path: str | os.PathLike) -> dict[tuple, dict]:
    """{(prompt_id, sample): row} of an existing samples file; a truncated last line (a crash) is cut off the file."""
    path = Path(path)
    if not path.is_file():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:  # appending after a partial line would corrupt the next row
            handle.truncate(end)
    rows = {}
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            row = json.loads(line)
            rows[(row["prompt_id"], row["sample"])] = row
        except (ValueError, KeyError, TypeError):
            raise WarmError(f"{path}: line {number} is not a sample row (pass --force to start again)") from None
    return rows


# --- helpers -------------------------------------------------------------------------------------------------------


def _check_settings(samples, max_new_tokens, temperature, top_p, batch_size) -> None:
    for name, value in (("samples", samples), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if value < 1:
            raise WarmError(f"{name} must be at least 1, got {value}")
    if not temperature > 0:
        raise WarmError(f"temperature must be positive, got {temperature}")
    if not 0 < top_p <= 1:
        raise WarmError(f"top_p must be in (0, 1], got {top_p}")


def _finish(out: Path, config: dict, metrics: dict) -> dict:
    payload = {"status": "complete", "config": config, "metrics": metrics}
    write_json(out / CONFIG_FILE, payload)
    return payload


def _claim(out: Path, config: dict, force: bool) -> dict:
    """Make OUT ours for this config: refuse a different one (unless force, which clears OUT's files); write the
    config; return the previous generate.json payload ({} when there are no samples yet, so a run that failed
    before its first batch, say on a mistyped --policy, does not hold on to its config)."""
    meta, samples = out / CONFIG_FILE, out / SAMPLES_FILE
    if force:
        for path in (samples, meta):
            path.unlink(missing_ok=True)
    has_rows = samples.is_file() and samples.stat().st_size > 0
    if has_rows and not meta.is_file():
        raise WarmError(f"{out}: has {SAMPLES_FILE} but no {CONFIG_FILE} (pass --force to start again)")
    previous = read_json(meta) if has_rows else {}
    old = previous.get("config", {})
    changed = [key for key in config if key not in UNCHECKED and key in old and old[key] != config[key]]
    changed += [key for key in old if key not in config and key not in UNCHECKED]
    if changed:
        what = ", ".join(f"{key}={old.get(key)!r}, not {config.get(key)!r}" for key in changed)
        raise WarmError(f"{out}: was generated with {what} (pass --force to start again)")
    write_json(meta, {**previous, "status": "running", "config": config})
    return previous


def load_policy(path: str, items: list[dict], device: str, dtype: torch.dtype, trust_remote_code: bool):
    """Model, tokenizer (left padding, pad = EOS when missing) and how prompts are rendered."""
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"  # decoder-only: new tokens follow the last prompt token directly
    model = load_causal_lm(path, dtype=dtype, trust_remote_code=trust_remote_code).to(device)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise WarmError(f"{path}: the tokenizer has {len(tokenizer)} tokens, the model's embeddings fewer")
    rendering = "chat_template" if getattr(tokenizer, "chat_template", None) else "raw"
    if rendering == "raw" and any(not isinstance(item["prompt"], str) for item in items):
        tokenizer.chat_template = DECODER_TEMPLATE  # messages need some template: warm's plain "role: content" lines
        rendering = "raw text, fallback template for messages"
    return model, tokenizer, rendering


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


def generation_config(model, tokenizer, max_new_tokens: int):
    """The model's generation config, made greedy over RowSampler's scores; EOS ids from both model and tokenizer."""
    settings = copy.deepcopy(model.generation_config)
    eos = settings.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos.add(tokenizer.eos_token_id)
    if not eos:
        raise WarmError("the policy has no EOS token: samples would never finish")
    settings.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, min_p=None,
                    max_new_tokens=max_new_tokens, max_length=None, eos_token_id=sorted(eos),
                    pad_token_id=tokenizer.pad_token_id)
    return settings


def sample_batch(model, encoded: list[list[int]], seeds: list[int], temperature: float, top_p: float, settings,
                  device: str) -> list[tuple[list[int], bool]]:
    """(new token ids up to and including EOS, whether EOS came) for each left-padded prompt."""
    width = max(map(len, encoded))
    input_ids = torch.full((len(encoded), width), settings.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, width - len(ids):] = 1
    sampler = LogitsProcessorList([RowSampler(seeds, temperature, top_p)])
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                generation_config=settings, logits_processor=sampler)
    results = []
    for ids in output[:, width:].tolist():
        stop = next((i for i, token in enumerate(ids) if token in settings.eos_token_id), None)
        results.append((ids, False) if stop is None else (ids[:stop + 1], True))
    return results


def _row(tokenizer, item: dict, sample: int, ids: list[int], finished: bool) -> dict:
    text_ids = ids[:-1] if finished else ids
    return {"prompt_id": item["prompt_id"], "prompt": item["prompt"], "sample": sample,
            "candidate": tokenizer.decode(text_ids, skip_special_tokens=True), "n_tokens": len(ids),
            "finished": finished}


def _append(handle, rows: list[dict]) -> None:
    """Append whole lines and force them to disk: after a crash, the file holds complete batches or a partial
    last line that `read_samples` drops."""
    handle.write(b"".join((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8") for row in rows))
    handle.flush()
    os.fsync(handle.fileno())

