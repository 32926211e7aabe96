"""`warm winrate`: how often policy A's answers beat policy B's, judged by a reward model.

The paper reports RL policies against each other this way (Ramé et al. 2024, arXiv 2401.12187, Sec. 5.2: the policy
trained on WARM against policies trained on a single reward model, judged by a control reward). Here:
- both policies answer every prompt with `warm generate` (same sampling settings, same seed). A row's noise depends
  only on (seed, prompt_id, sample) (generate.py's `row_seed`), so A's and B's k-th answers to a prompt are drawn
  with the same random numbers: the comparison is paired, and a policy against itself ties everywhere;
- the judge (any scorer spec, or a callable `f(prompts, responses) -> floats`) scores every answer; per prompt and
  sample, A wins (1) if judge(A) > judge(B), ties count half (0.5), else 0; a prompt's score is its mean over samples;
- the win rate is the mean over prompts, with a percentile bootstrap 95% interval over prompts
  (`warm.metrics.bootstrap_ci`).
OUT/a/ and OUT/b/ are `warm generate` directories (samples.jsonl, generate.json: resumable, refused if settings
change); OUT/winrate.json holds the result, the settings and every judged pair. A `warm rl` run directory given as a
policy stands for its trained policy, RUN/final.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from warm.errors import WarmError
from warm.fileio import write_json
from warm.rundir import GenerateRun, RLRun

RESULT_FILE = "winrate.json"


def win_scores(judge_a: np.ndarray, judge_b: np.ndarray) -> np.ndarray:
    """Per prompt, the mean over samples of 1 (A's judge score higher), 0.5 (equal) or 0; inputs are
    [prompts, samples] arrays."""
    judge_a, judge_b = np.asarray(judge_a, dtype=np.float64), np.asarray(judge_b, dtype=np.float64)
    if judge_a.shape != judge_b.shape or judge_a.ndim != 2:
        raise WarmError(f"judge scores must be two [prompts, samples] arrays of one shape, got {judge_a.shape} "
                        f"and {judge_b.shape}")
    return ((judge_a > judge_b) + 0.5 * (judge_a == judge_b)).mean(axis=1)


def resolve_policy_dir(policy: str) -> str:
    """A `warm rl` run directory stands for its trained policy (RUN/final); anything else is returned as it is."""
    run = RLRun(Path(policy))
    if run.config_file.is_file() and not (run.root / "config.json").is_file():
        if not run.final.is_dir():
            raise WarmError(f"{policy}: a warm rl run without {run.final.name}/ (not finished; pass --resume to warm rl)")
        return str(run.final)
    return policy


def run_winrate(policy_a: str, policy_b: str, prompts: str | os.PathLike, judge: Any, *, out: str | None = None,
                samples: int = 1, max_new_tokens: int = 256, temperature: float = 0.9, seed: int = 0,
                batch_size: int = 8, limit: int | None = None, judge_max_length: int | None = None,
                judge_batch_size: int = 32, precision: str = "auto", n_boot: int = 1000, force: bool = False,
                progress: bool = True) -> dict:
    """Generate with both policies, judge, and return (and with `out`, write) winrate.json's payload.

    `judge` is a scorer spec, a warm scorer or a callable `f(prompts, responses) -> floats`. Without `out` the
    samples go to a temporary directory that is removed afterwards.
    """
    from warm.integrations.reward_function import WarmRewardFunction

    if n_boot < 1:
        raise WarmError(f"n_boot must be at least 1, got {n_boot}")
    settings = {"samples": samples, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
                "batch_size": batch_size, "limit": limit}
    judge_name = os.fspath(judge) if isinstance(judge, (str, os.PathLike)) else None
    if judge_name is not None:
        from warm.models.runtime import default_device, resolve_precision

        judge = WarmRewardFunction(judge_name, max_length=judge_max_length, batch_size=judge_batch_size,
                                   precision=resolve_precision(precision, default_device()))
    elif not isinstance(judge, WarmRewardFunction):
        judge = WarmRewardFunction(judge)
    if out is not None:
        return _run(policy_a, policy_b, prompts, judge, judge_name or judge.__name__, Path(out), settings, n_boot,
                    force, progress)
    with tempfile.TemporaryDirectory(prefix="warm-winrate-") as tmp:
        return _run(policy_a, policy_b, prompts, judge, judge_name or judge.__name__, Path(tmp), settings, n_boot,
                    force, progress, keep=False)


def _run(policy_a: str, policy_b: str, prompts, judge, judge_name: str, out: Path, settings: dict, n_boot: int,
         force: bool, progress: bool, keep: bool = True) -> dict:
    from warm.apply.sampling.generate import generate_samples, read_samples
    from warm.apply.sampling.prompts import read_prompts
    from warm.metrics import bootstrap_ci

    items = read_prompts(prompts, settings["limit"])
    paths = {"a": resolve_policy_dir(policy_a), "b": resolve_policy_dir(policy_b)}
    rows = {}
    for side, path in paths.items():
        generate_samples(path, prompts, out / side, force=force, progress=progress, **settings)
        rows[side] = read_samples(GenerateRun(out / side).samples_file)
    n = settings["samples"]
    keys = [(item["prompt_id"], k) for item in items for k in range(n)]
    prompt_of = [item["prompt"] for item in items for _ in range(n)]
    scores = {side: judge.score(prompt_of, [rows[side][key]["candidate"] for key in keys]).reshape(len(items), n)
              for side in paths}
    per_prompt = win_scores(scores["a"], scores["b"])
    lo, hi = bootstrap_ci(per_prompt, n_boot=n_boot, seed=settings["seed"])
    a, b = scores["a"], scores["b"]
    result = {
        "policy_a": policy_a, "policy_b": policy_b, "policy_a_path": paths["a"], "policy_b_path": paths["b"],
        "judge": judge_name,
        "prompts": os.fspath(prompts), "settings": settings, "n_prompts": len(items),
        "win_rate": float(per_prompt.mean()), "ci95": [lo, hi], "n_boot": n_boot,
        "wins": int((a > b).sum()), "ties": int((a == b).sum()), "losses": int((a < b).sum()),
        "judge_mean_a": float(a.mean()), "judge_mean_b": float(b.mean()),
        "samples_dirs": {side: str(out / side) for side in paths} if keep else None,
        "per_prompt": [{"prompt_id": item["prompt_id"], "win": float(per_prompt[i]),
                        "judge_a": a[i].tolist(), "judge_b": b[i].tolist()} for i, item in enumerate(items)],
    }
    if keep:
        write_json(out / RESULT_FILE, result)
    return result
