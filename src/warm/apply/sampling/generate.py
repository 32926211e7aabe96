"""`warm generate`: K sampled answers per prompt from a Hugging Face causal LM (the candidates of best-of-N).

OUT/samples.jsonl holds one row per sample, {prompt_id, prompt, sample, candidate, n_tokens, finished}; its
prompt_id, prompt and candidate columns make it a best-of-N candidates file as it is (no gold column).
OUT/generate.json holds the config and, once a run finishes, its metrics.

Determinism and resume. A sample depends on (seed, prompt_id, sample index) and the model, not on what ran before
or beside it:
- every (prompt_id, sample) row draws its randomness from its own torch.Generator (warm.apply.sampling.sampler);
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

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from warm.apply.sampling.prompts import encode_prompt, read_prompts
from warm.apply.sampling.sampler import generation_config, load_policy, row_seed, sample_batch
from warm.errors import WarmError
from warm.fileio import read_json, sha256_file, write_json
from warm.models.policy import resolve_policy
from warm.models.runtime import DTYPES, default_device, resolve_dtype
from warm.rundir import GenerateRun, changed_settings, refuse_changed

# Config fields that may change on resume: which prompts are used, and where the same policy was found.
UNCHECKED = ("limit", "policy_path")


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
    device = device or default_device()
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
    done = read_samples(GenerateRun(out).samples_file)
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
    with open(GenerateRun(out).samples_file, "ab") as handle, bar:
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
    write_json(GenerateRun(out).config_file, payload)
    return payload


def _claim(out: Path, config: dict, force: bool) -> dict:
    """Make OUT ours for this config: refuse a different one (unless force, which clears OUT's files); write the
    config; return the previous generate.json payload ({} when there are no samples yet, so a run that failed
    before its first batch, say on a mistyped --policy, does not hold on to its config)."""
    run = GenerateRun(out)
    meta, samples = run.config_file, run.samples_file
    if force:
        for path in (samples, meta):
            path.unlink(missing_ok=True)
    has_rows = samples.is_file() and samples.stat().st_size > 0
    if has_rows and not meta.is_file():
        raise WarmError(f"{out}: has {samples.name} but no {meta.name} (pass --force to start again)")
    previous = read_json(meta) if has_rows else {}
    refuse_changed(out, changed_settings(previous.get("config", {}), config, UNCHECKED), made="was generated with")
    write_json(meta, {**previous, "status": "running", "config": config})
    return previous


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

