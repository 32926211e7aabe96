"""`make bench`, scoring and serving rows (raw timings; benchmarks/bench.py turns them into ratios).

Scoring, sequences/s: both tools in the orchestrator's process, on the first N pairs of the demo OOD split (both
responses: 2N sequences, counted the same for both), with the same model (the bench's `warm init`), max length,
batch size and precision; each tool scores two pairs untimed first (first-call set-up).
- warm: `RewardModelScorer.score_data`, the `warm eval` path: contract encoding, each distinct sequence once,
  batches of neighbours by length.
- plain transformers: AutoTokenizer + AutoModelForSequenceClassification; each (prompt, response) rendered by the
  tokenizer's chat template (the one `warm init` saved), fixed batches in file order, tokenizer(padding="longest",
  truncation=True, max_length=L), torch.inference_mode, the same autocast. The two compute the same function: the
  largest reward difference between them is recorded (bf16 rounding only).

Serving, items/s: `warm serve` started once for WARM (the merge of M perturbed members) and once for ENS (the M
members), by benchmarks/serve_load.py, both before the repeats; each measurement is one closed-loop run of
C clients x K items per request (serve_load.run_setting). In process: the scorer the server builds
(warm.serve.scoring.load_scorer, same options) called on the demo items in calls of C x K items, the most one
micro-batch can gather from C closed-loop clients.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import torch

SCORE_TOOLS = ("warm", "transformers")
SERVE_TOOLS = ("http", "in_process", "ens_http")


# ---------------------------------------------------------------------------------------------------- scoring
class PlainLoop:
    """What a transformers user writes to score preference pairs with a reward model."""

    def __init__(self, model_dir: str, max_length: int, batch_size: int, precision: str, device: str) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
        self.max_length, self.batch_size, self.precision, self.device = max_length, batch_size, precision, device

    def score(self, prompts: list, responses: list):
        texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p},
                                                     {"role": "assistant", "content": r}], tokenize=False)
                 for p, r in zip(prompts, responses)]
        rewards = []
        with torch.inference_mode(), torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[start:start + self.batch_size], padding="longest", truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                rewards.append(self.model(**batch).logits[:, 0].float().cpu())
        return torch.cat(rewards).numpy()


def score_section(init: str, data_path: str, lengths: list[int], n_pairs: int, batch_size: int, precision: str,
                  repeats: int, rotate) -> dict:
    import numpy as np

    from warm.data.formats import load_preferences
    from warm.models.runtime import default_device
    from warm.score.scorer import RewardModelScorer

    data = load_preferences(data_path, limit=n_pairs)
    prompts, responses = list(data.prompt) * 2, list(data.chosen) + list(data.rejected)
    sequences = len(responses)
    device = default_device()
    out = {}
    for length in lengths:
        scorer = RewardModelScorer(init, batch_size=batch_size, max_length=length, precision=precision)
        plain = PlainLoop(init, length, batch_size, precision, device)
        runs = {"warm": lambda: np.concatenate(scorer.score_data(data)),
                "transformers": lambda: plain.score(prompts, responses)}
        scorer.score_texts(prompts[:2], responses[:2])
        plain.score(prompts[:2], responses[:2])
        samples, rewards = [], {}
        for rep in range(repeats):
            order = rotate(SCORE_TOOLS, rep)
            sample = {"repeat": rep, "order": order, "load_1min_before": os.getloadavg()[0]}
            for tool in order:
                start = time.perf_counter()
                rewards[tool] = runs[tool]()
                wall = time.perf_counter() - start
                sample[tool] = {"sequences_per_second": sequences / wall, "wall_seconds": wall}
            print(f"  score L={length} run {rep}: warm {sample['warm']['sequences_per_second']:.1f}, "
                  f"transformers {sample['transformers']['sequences_per_second']:.1f} sequences/s", flush=True)
            samples.append(sample)
        out[str(length)] = {"sequences": sequences, "distinct_sequences": len(scorer.tokenize(data).sequences),
                            "max_abs_reward_diff": float(np.abs(rewards["warm"] - rewards["transformers"]).max()),
                            "samples": samples}
    return out


# ---------------------------------------------------------------------------------------------------- serving
def serve_section(work: Path, model: str | None, members: int, clients: int, items: int, duration: float,
                  inproc_items: int, max_length: int, precision: str, repeats: int, rotate) -> dict:
    from benchmarks.make_serving_models import build_serving_models
    from benchmarks.serve_load import demo_pairs, free_port, run_setting, start_server, stop_server, wait_ready
    from warm.serve.scoring import load_scorer, make_score_fn

    _, member_dirs, merged = build_serving_models(work, members, 0.01, 0, model)
    specs = {"http": str(merged), "ens_http": ",".join(map(str, member_dirs))}
    options = {"max_length": max_length, "precision": precision}  # the server's other options at their defaults
    server_args = [arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    pairs = demo_pairs()
    urls, processes = {}, []
    try:
        for tool, spec in specs.items():
            urls[tool] = f"http://127.0.0.1:{free_port()}"
            processes.append(start_server(spec, int(urls[tool].rsplit(":", 1)[1]), server_args, None))
        for url, process in zip(urls.values(), processes):
            wait_ready(url, process)
        from warm.serve.settings import ServeSettings

        score = make_score_fn(load_scorer(str(merged), max_batch=ServeSettings().max_batch, device=None, **options))
        call = clients * items
        chunks = [[pairs[i % len(pairs)] for i in range(s, min(s + call, inproc_items))]
                  for s in range(0, inproc_items, call)]
        samples = []
        for rep in range(repeats):
            order = rotate(SERVE_TOOLS, rep)
            sample = {"repeat": rep, "order": order}
            for tool in order:
                if tool == "in_process":
                    load, start = os.getloadavg()[0], time.perf_counter()
                    for chunk in chunks:
                        score(chunk)
                    wall = time.perf_counter() - start
                    sample[tool] = {"items_per_second": inproc_items / wall, "elapsed_s": wall,
                                    "items": inproc_items, "items_per_call": call, "load_1min_before": load}
                else:
                    run = asyncio.run(run_setting(urls[tool], clients, duration, items, 100_000, pairs, {}))
                    if run["errors"] or not run["requests"]:
                        raise RuntimeError(f"{tool}: {run['errors']} errors, {run['requests']} requests: "
                                           f"{run['first_errors']}")
                    # run_setting rounds items/s to 0.1; its request count and 10 ms elapsed time are finer
                    sample[tool] = {**run, "items_per_second": run["requests"] * items / run["elapsed_s"]}
            print(f"  serve run {rep}: " + ", ".join(f"{t} {sample[t]['items_per_second']:.1f}" for t in SERVE_TOOLS)
                  + " items/s", flush=True)
            samples.append(sample)
    finally:
        for process in processes:
            stop_server(process)
    return {"members": members, "clients": clients, "items_per_request": items, "duration_s": duration,
            "server_args": server_args, "specs": specs, "samples": samples}
