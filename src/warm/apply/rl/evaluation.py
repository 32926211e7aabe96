"""Evaluation during `warm rl`: proxy reward, control reward and KL to the initial policy on held-out prompts.

This is the measurement behind the paper's reward-hacking curves (Ramé et al. 2024, arXiv 2401.12187, Sec. 5.2):
as RL goes on, the proxy reward the policy is trained on keeps rising while a control reward (a reward model never
used for training) eventually falls; a more reliable proxy (WARM) pushes that turning point further, at a larger
KL from the initial policy.

Every `every` steps (and at step 0, before any update, and at the last step), `RLEvalCallback`:
- samples ONE response per held-out prompt with the current policy, at the training temperature, with the same
  per-prompt noise at every evaluation (generate.py's RowSampler seeded by `row_seed(seed, prompt_id, 0)`): the
  rows of two evaluations differ only because the policy changed (common random numbers);
- scores (prompt, response) with the proxy and the control reward;
- estimates KL(policy || initial policy) by Monte Carlo on those responses: per response, the sum over its tokens
  (EOS included, as TRL's completion mask) of log p_policy - log p_init, both at the sampling temperature (the
  distributions the responses are drawn from; TRL's RLOO penalty uses the same tempered log-probabilities);
  the mean over prompts is reported with its standard error. A single batch can give a slightly negative mean;
  at step 0 the two models are the same and it is exactly 0;
- appends one row to OUT/eval.jsonl and the per-prompt responses to OUT/eval_samples.jsonl, and updates the
  progress line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
from transformers import TrainerCallback

# The sampling and the KL live in warm.apply.rl.probe (shared with the monitor); importers of these two from here
# keep working.
from warm.apply.rl.probe import PolicyProbe, is_peft, response_logps  # noqa: F401
from warm.metrics import standard_error
from warm.errors import WarmError
from warm.fileio import atomic_file
from warm.rundir import RLRun



# --- JSON-lines files keyed by step ---------------------------------------------------------------------------------


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSON-lines file (none if it is missing). A last line without its newline that does not parse
    (a crash mid-write) is skipped; any other malformed line is a WarmError naming it (the file was edited or
    corrupted, and silently dropping rows would change the results)."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            if number == len(lines) and not text.endswith("\n"):
                continue  # the truncated last line of a killed run
            raise WarmError(f"{path}: line {number}: invalid JSON ({exc})") from None
    return rows


def keep_rows_up_to(path: str | os.PathLike, step: int) -> None:
    """Rewrite `path` (atomically) without rows after `step`: on resume from checkpoint `step`, later rows describe
    a policy that is about to be trained again, so they are dropped rather than duplicated."""
    path = Path(path)
    if not path.is_file():
        return
    rows = [row for row in read_rows(path) if row.get("step", 0) <= step]
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append whole lines and force them to disk, so a crash leaves complete rows (or one partial line)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        handle.flush()
        os.fsync(handle.fileno())


# --- the callback -----------------------------------------------------------------------------------------------------


class RLEvalCallback(TrainerCallback):
    """Evaluates the policy at step 0, every `every` steps and at the end; see the module docstring."""

    def __init__(self, out: Path, items: list[dict], tokenizer, proxy, control=None, *, every: int,
                 temperature: float, max_new_tokens: int, seed: int, batch_size: int, total_steps: int,
                 progress: bool = True, source: str = "eval prompts") -> None:
        self.run, self.items, self.tokenizer = RLRun(Path(out)), items, tokenizer
        self.proxy, self.control = proxy, control
        self.every, self.total_steps, self.progress = every, total_steps, progress
        self.probe = PolicyProbe(items, tokenizer, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed,
                                 batch_size=batch_size, source=source)
        self.bar = None
        self.started = time.perf_counter()
        self.rows = []

    def bind(self, trainer) -> None:
        """Take the initial policy for the KL (PolicyProbe.bind), before any update or checkpoint load."""
        self.probe.bind(trainer)

    def load_done(self, resume_step: int) -> None:
        """Forget rows after `resume_step` (see keep_rows_up_to) and remember which steps are evaluated."""
        for path in (self.run.eval_file, self.run.eval_samples_file, self.run.train_log_file):
            keep_rows_up_to(path, resume_step)
        self.rows = read_rows(self.run.eval_file)

    @property
    def done(self) -> set[int]:
        return {row["step"] for row in self.rows}

    # Trainer hooks. The eval at step k runs before the Trainer saves checkpoint k (saving follows on_step_end).
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.bar = tqdm(total=self.total_steps, initial=state.global_step, desc="rl", unit="step",
                        disable=not self.progress, dynamic_ncols=True)
        if self.rows:
            self._show(self.rows[-1])
        self._maybe_evaluate(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
        if state.global_step % self.every == 0:
            self._maybe_evaluate(model, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            append_rows(self.run.train_log_file, [{"step": state.global_step, **logs}])

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._maybe_evaluate(model, state.global_step)
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # The evaluation itself.
    def _maybe_evaluate(self, model, step: int) -> None:
        if model is not None and step not in self.done:
            self.evaluate(model, step)

    def evaluate(self, model, step: int) -> dict:
        started = time.perf_counter()
        probe = self.probe.sample(model)
        texts, responses, finished, kl = probe.texts, probe.ids, probe.finished, probe.kl
        prompts = self.probe.prompts
        proxy = self.proxy.score(prompts, texts)
        control = self.control.score(prompts, texts) if self.control is not None else None
        lengths = np.array([len(ids) for ids in responses], dtype=np.float64)
        row = {"step": step, "proxy_reward": _mean(proxy), "proxy_reward_sem": standard_error(proxy),
               "control_reward": None if control is None else _mean(control),
               "control_reward_sem": None if control is None else standard_error(control),
               "kl": _mean(kl), "kl_sem": standard_error(kl), "response_tokens": _mean(lengths),
               "finished": _mean(np.array(finished, dtype=np.float64)), "n_prompts": len(self.items),
               "eval_seconds": round(time.perf_counter() - started, 3),
               "elapsed_seconds": round(time.perf_counter() - self.started, 3)}
        samples = [{"step": step, "prompt_id": item["prompt_id"], "response": text, "n_tokens": len(ids),
                    "finished": done, "proxy_reward": float(proxy[i]),
                    "control_reward": None if control is None else float(control[i]), "kl": float(kl[i])}
                   for i, (item, text, ids, done) in enumerate(zip(self.items, texts, responses, finished))]
        append_rows(self.run.eval_samples_file, samples)
        append_rows(self.run.eval_file, [row])
        self.rows.append(row)
        self._show(row)
        return row

    def _show(self, row: dict) -> None:
        if self.bar is None:
            return
        shown = {"eval@": row["step"], "proxy": f"{row['proxy_reward']:.3g}", "kl": f"{row['kl']:.3g}",
                 "len": f"{row['response_tokens']:.3g}"}
        if row.get("control_reward") is not None:
            shown["control"] = f"{row['control_reward']:.3g}"
        self.bar.set_postfix(shown, refresh=True)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))

