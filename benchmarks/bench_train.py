"""`make bench`, training rows: `warm train` (one member) against plain TRL `RewardTrainer`, pairs/s, and MFU.

Each tool trains in its own child process (`python benchmarks/bench_train.py {warm,trl} ...`), so neither inherits
the other's warmed-up kernels or memory. A child first runs an untimed warm-up training of --warmup-steps steps
(oneDNN's first-call set-up, the allocator's growth), then the timed one of --steps steps, and prints one JSON line.
pairs/s = steps x batch size / wall time of `Trainer.train()` in both tools: what warm records as
`pairs_per_second` in train_metrics.json. Model loading and tokenisation are outside it for both.

- warm: the `warm train` command itself (warm.cli's click app, run in the child), --members 1, on the first
  steps x batch pairs of the demo train split, other options at their defaults.
- TRL: `RewardTrainer` on the same pairs as text, {"chosen", "rejected"}, tokenised by TRL. The text of each
  sequence is what warm trains on (rendered by the init's chat template, cut from the left at the max length),
  without the tokenizer's own special tokens and without its last token, because TRL appends an EOS to every
  text (this BERT tokenizer has none, so its [SEP] is named the EOS, as a TRL user must). TRL's sequences then
  have warm's lengths, but where the cut fell inside a word, which TRL reads as a whole word (a token or two more
  or less in a few sequences out of a hundred: compare `tokens_per_sequence`). TRL's defaults stay (all dropout
  off, random order, one forward pass over a batch's chosen and rejected sides padded together), except the
  arguments warm passes to any trainer on a CPU (warm.models.runtime.trainer_arguments: bf16 autocast,
  activation checkpointing off, no saving, no trackers), where TRL's defaults fail or slow it down; and
  max_length=None (TRL's filter, which drops longer pairs, has none to drop).
MFU = pairs/s x training FLOPs per pair (benchmarks/long_inputs.py: 3 x forward FLOPs of the real tokens) / the
bf16 2048^2 GEMM rate measured right after, in the orchestrator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TOOLS = ("warm", "trl")


# ---------------------------------------------------------------------------------------------------- children
def run_warm(a) -> dict:
    from warm.cli import app
    from warm.fileio import read_json

    def train(steps: int, out: Path) -> dict:
        app(["train", "--init", a.init, "--data", a.data, "--out", str(out), "--members", "1",
             "--max-steps", str(steps), "--limit", str(steps * a.batch_size), "--batch-size", str(a.batch_size),
             "--max-length", str(a.max_length), "--precision", a.precision, "--quiet"], standalone_mode=False)
        return read_json(out / "train_metrics.json")["members"]["m00"]

    with tempfile.TemporaryDirectory(prefix="warm-bench-train-") as scratch:
        if a.warmup_steps:
            train(a.warmup_steps, Path(scratch) / "warm-up")
        m = train(a.steps, Path(scratch) / "timed")
    return {"pairs_per_second": m["pairs_per_second"], "wall_seconds": m["wall_seconds"], "steps": m["steps"]}


def trl_texts(init: str, data: str, max_length: int, n_pairs: int) -> tuple[list[str], list[str]]:
    """(chosen texts, rejected texts) of the first `n_pairs` pairs: what warm trains on, for TRL to tokenise."""
    from warm.data.formats import load_preferences
    from warm.data.tokenize import tokenize_pairs
    from warm.models.loading import load_encoder

    encoder = load_encoder(init, max_length=max_length)
    tok = encoder.tokenizer
    pairs = tokenize_pairs(encoder, load_preferences(data, limit=n_pairs))
    framed, plain = tok("a")["input_ids"], tok("a", add_special_tokens=False)["input_ids"]
    lead = framed.index(plain[0])
    tail = len(framed) - lead - len(plain) + 1  # + the token TRL's appended EOS stands for

    def text(ids: list[int]) -> str:
        tokens = tok.convert_ids_to_tokens(ids[lead:len(ids) - tail])
        if tokens and tokens[0].startswith("##"):  # the cut fell inside a word: its WordPiece tail starts the text
            tokens[0] = tokens[0][2:]
        return tok.convert_tokens_to_string(tokens)

    return [text(s) for s in pairs.chosen_ids()], [text(s) for s in pairs.rejected_ids()]


def run_trl(a) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from warm.models.runtime import default_device, quiet, trainer_arguments

    chosen, rejected = trl_texts(a.init, a.data, a.max_length, a.steps * a.batch_size)

    def train(steps: int, scratch: str) -> dict:
        tokenizer = AutoTokenizer.from_pretrained(a.init)
        if tokenizer.eos_token is None:
            tokenizer.eos_token = tokenizer.sep_token
        model = AutoModelForSequenceClassification.from_pretrained(a.init)
        n = steps * a.batch_size
        dataset = Dataset.from_dict({"chosen": chosen[:n], "rejected": rejected[:n]})
        args = RewardConfig(**trainer_arguments(
            a.precision, default_device(), False, output_dir=scratch, per_device_train_batch_size=a.batch_size,
            max_steps=steps, learning_rate=1e-5, seed=0, max_length=None, logging_steps=max(1, steps)))
        trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        quiet(trainer, False)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
        ids = list(trainer.train_dataset["chosen_ids"]) + list(trainer.train_dataset["rejected_ids"])
        return {"pairs_per_second": trainer.state.global_step * a.batch_size / wall, "wall_seconds": wall,
                "steps": trainer.state.global_step, "tokens_per_sequence": sum(map(len, ids)) / len(ids)}

    with tempfile.TemporaryDirectory(prefix="warm-bench-trl-") as scratch:
        if a.warmup_steps:
            train(a.warmup_steps, scratch)
        return train(a.steps, scratch)


def child_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one timed training run (a child of benchmarks/bench.py)")
    parser.add_argument("tool", choices=TOOLS)
    for name in ("--init", "--data", "--precision"):
        parser.add_argument(name, required=True)
    for name in ("--max-length", "--batch-size", "--steps", "--warmup-steps"):
        parser.add_argument(name, type=int, required=True)
    a = parser.parse_args(argv)
    result = run_warm(a) if a.tool == "warm" else run_trl(a)
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------------- orchestrator
def child(tool: str, settings: dict, length: int, log: Path) -> dict:
    """One child run; its JSON line, with the load average before it."""
    command = [sys.executable, str(Path(__file__).resolve()), tool, "--max-length", str(length),
               *(f"--{key.replace('_', '-')}={settings[key]}" for key in
                 ("init", "data", "precision", "batch_size", "steps", "warmup_steps"))]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    load = os.getloadavg()[0]
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise RuntimeError(f"training child {tool} failed ({proc.returncode}); log {log}:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load_1min_before": load}


def train_section(settings: dict, lengths: list[int], repeats: int, rotate, logs: Path) -> dict:
    """Raw timings per max length and repeat: each tool's pairs/s, the GEMM rate, FLOPs per pair."""
    from transformers import AutoConfig

    from benchmarks.long_inputs import gemm_rate, training_flops_per_pair
    from warm.data.formats import load_preferences
    from warm.data.tokenize import tokenize_pairs
    from warm.models.loading import load_encoder

    config = AutoConfig.from_pretrained(settings["init"])
    out = {}
    for length in lengths:
        data = load_preferences(settings["data"], limit=settings["steps"] * settings["batch_size"])
        pairs = tokenize_pairs(load_encoder(settings["init"], max_length=length), data)
        tokens = sum(map(len, pairs.chosen_ids() + pairs.rejected_ids())) / (2 * pairs.n_pairs)
        samples = []
        for rep in range(repeats):
            order = rotate(TOOLS, rep)
            sample = {"repeat": rep, "order": order}
            for tool in order:
                sample[tool] = child(tool, settings, length, logs / f"train-{length}-{tool}-r{rep}.log")
                print(f"  train L={length} {tool:4s} run {rep}: {sample[tool]['pairs_per_second']:.2f} pairs/s",
                      flush=True)
            sample["gemm_flops_per_second"] = gemm_rate()
            samples.append(sample)
        out[str(length)] = {"flops_per_pair": training_flops_per_pair(config, pairs), "tokens_per_sequence": tokens,
                            "truncated_sequences": pairs.truncated, "samples": samples}
    return out


if __name__ == "__main__":
    child_main()
