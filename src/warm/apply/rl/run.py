"""`warm rl`: fine-tune a policy against a (WARM) reward model with a KL penalty to the initial policy.

The paper's RL setting (Ramé et al. 2024, arXiv 2401.12187, Sec. 5.2) is REINFORCE with a baseline, the KL to the SFT
policy put into the reward (coefficient 0.003 with clean preference labels, 0.01 with corrupted ones), responses
sampled at temperature 0.9, and a control reward model, never trained on, that tells reward hacking from progress.
warm uses TRL's RLOOTrainer, the closest TRL has:

- REINFORCE leave-one-out (Ahmadian et al. 2024): `num_generations` responses per prompt; each one's baseline is the
  mean reward of the others. With one update per batch (`num_iterations=1`, TRL's default) the clipped ratio is 1
  and the loss is exactly REINFORCE, -mean(advantage * sum of the response's log-probs).
- The KL is IN THE REWARD, as in the paper. TRL 1.16's RLOOTrainer (`_generate_and_score_completions`) computes
  `rewards - beta * sum_t (log pi(y_t) - log pi_ref(y_t))` over each response's tokens (EOS included), with
  log-probabilities at the sampling temperature, before the leave-one-out baseline; `beta` is `--kl-coef`. (TRL's
  GRPOTrainer puts its KL in the loss instead, per token: not the paper's setting.)
- The reference is the initial policy: a frozen copy, or the base model under the LoRA adapter (`--lora-r r`, or `--lora r`).
- Constant learning rate (no decay): a run extended with `--resume --steps` larger follows the same schedule as a
  run started with that many steps. Dropout is off so log-probabilities (the KL, the ratio) are deterministic.

Nothing is missing from TRL for this; warm adds the held-out evaluation (`warm.apply.rl.evaluation`), the run directory
contract below and resumption.

OUT/ holds: rl_config.json (written first: the options and what they resolved to), eval.jsonl (one row per
evaluation), eval_samples.jsonl (the evaluated responses), train_log.jsonl (TRL's per-step logs: reward, kl,
lengths), checkpoints/checkpoint-N (Trainer checkpoints every --eval-every steps, the last --keep-checkpoints kept),
final/ (the trained policy, a standard HF directory, LoRA merged in, plus warm_rl.json) and metrics.json (at the end).
With `--monitor-every K`, monitor.jsonl too: the reward-hacking monitor's probes (warm.apply.rl.monitor), whose
alarm (and the last good checkpoint) metrics.json records; `--stop-on-hacking` ends the run there.
"""

from __future__ import annotations

import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from warm.apply.rl.config import RENAMED, RESUMABLE, RLConfig, check_config
from warm.apply.rl.trainer import make_trainer, save_final
from warm.errors import WarmError
from warm.fileio import read_json, write_json
from warm.rundir import MERGE_FILE, RLRun, changed_settings, refuse_changed


def run_rl(config: RLConfig, *, resume: bool = False, force: bool = False, reward: Any = None, control: Any = None,
           members: Any = None, progress: bool = True, callbacks: tuple = ()) -> dict:
    """Train, evaluate and save as the module docstring says; return metrics.json's payload.

    `reward` / `control` may be given as Python objects instead of the specs in `config` (a warm scorer, or a
    callable `f(prompts, responses) -> floats`, e.g. a constructed reward in tests); `config.reward` then only
    names it. `members`, likewise, for the monitor: anything with `score_members(prompts, responses)`.
    `callbacks` are extra transformers TrainerCallbacks.
    """
    from warm.config import to_dict

    check_config(config)
    out = Path(config.out)
    run = RLRun(out)
    options = to_dict(config)
    previous = _claim(run, options, resume, force)
    if resume and _finished(run, config):
        write_json(run.config_file, {**previous, "status": "complete"})
        return read_json(run.metrics_file)
    started = time.perf_counter()

    import torch

    from warm.apply.rl.evaluation import RLEvalCallback
    from warm.apply.sampling.prompts import read_prompts
    from warm.apply.sampling.sampler import load_policy
    from warm.integrations.reward_function import WarmRewardFunction
    from warm.models.loading import quiet_transformers
    from warm.models.policy import resolve_policy
    from warm.models.runtime import default_device, policy_precision, resolve_precision

    items = read_prompts(config.prompts)
    train_items, eval_items = _split(items, config)
    device = default_device()
    # The policy's precision by warm generate's rule (generation dominates RL); reward models by warm's usual one.
    reward_precision = resolve_precision(config.precision, device)
    precision = policy_precision(config.precision, device)
    policy_path = resolve_policy(config.policy)
    scorer_options = {"max_length": config.reward_max_length, "batch_size": config.reward_batch_size,
                      "precision": reward_precision, "trust_remote_code": config.trust_remote_code}
    proxy = WarmRewardFunction(reward if reward is not None else config.reward,
                               **(scorer_options if reward is None else {}))
    judge = None
    if control is not None or config.control is not None:
        judge = WarmRewardFunction(control if control is not None else config.control,
                                   **(scorer_options if control is None else {}))
    model, tokenizer, rendering = load_policy(policy_path, train_items + eval_items, device, torch.float32,
                                               config.trust_remote_code)
    resolved = {"policy_path": policy_path, "device": device, "precision": precision,
                "reward_precision": reward_precision, "rendering": rendering,
                "train_prompts": len(train_items), "eval_prompts": len(eval_items),
                "eval_prompt_ids": [item["prompt_id"] for item in eval_items],
                "reward_name": proxy.__name__, "control_name": None if judge is None else judge.__name__,
                "kl": "in the reward: r - kl_coef * sum over response tokens of log(pi / pi_init) (TRL RLOO)",
                **_versions()}
    write_json(run.config_file, {**previous, "status": "running", "config": options, "resolved": resolved})

    checkpoint = last_complete_checkpoint(run.checkpoints) if resume else None
    evaluator = RLEvalCallback(out, eval_items, tokenizer, proxy, judge, every=config.eval_every,
                               temperature=config.temperature, max_new_tokens=config.max_new_tokens,
                               seed=config.seed, batch_size=config.eval_batch_size, total_steps=config.steps,
                               progress=progress, source=config.eval_prompts or config.prompts)
    evaluator.load_done(_checkpoint_step(checkpoint))
    monitor = None
    if config.monitor_every:
        monitor = _monitor(config, eval_items, proxy, judge, _monitor_members(config, proxy, members, reward,
                                                                                scorer_options), scorer_options)
        monitor.load_done(_checkpoint_step(checkpoint))
    # transformers' weight-loading and shard-writing bars (TRL's reference model, every checkpoint) and info logs
    # would bury the one progress line; warnings that matter surface as errors.
    with quiet_transformers(), warnings.catch_warnings():
        # TRL 1.16 still calls transformers' deprecated `is_gradient_checkpointing` on every step.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        trainer = make_trainer(config, model, tokenizer, train_items, proxy, device, precision,
                               [evaluator, *([monitor] if monitor else []), *callbacks])
        evaluator.bind(trainer)
        if monitor is not None:
            monitor.bind(trainer)
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            evaluator.close()
        save_final(run.final, trainer.model, tokenizer, options, resolved)
    train_logs = [row for row in trainer.state.log_history if "reward" in row]
    metrics = {"status": "complete", "steps": trainer.state.global_step,
               "resumed_from_step": _checkpoint_step(checkpoint),
               "wall_seconds": round(time.perf_counter() - started, 3),
               "initial_eval": next((row for row in evaluator.rows if row["step"] == 0), None),
               "last_eval": evaluator.rows[-1] if evaluator.rows else None,
               "last_train_log": train_logs[-1] if train_logs else None,
               "final": str(run.final)}
    if monitor is not None:
        metrics["monitor"] = {"alarm": monitor.alarm, "stopped": bool(monitor.alarm and config.stop_on_hacking),
                              "probes": len(monitor.history), "file": str(run.monitor_file)}
    write_json(run.metrics_file, metrics)
    write_json(run.config_file, {"status": "complete", "config": options, "resolved": resolved})
    return metrics


# --- the run directory ---------------------------------------------------------------------------------------------


def last_complete_checkpoint(directory: Path) -> str | None:
    """The latest checkpoint the Trainer finished writing (trainer_state.json is its last file); a run killed while
    saving leaves a partial checkpoint-N, which is removed here rather than resumed from."""
    if not directory.is_dir():
        return None
    steps = sorted((int(p.name.split("-")[1]), p) for p in directory.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
    for _, path in reversed(steps):
        if (path / "trainer_state.json").is_file():
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _claim(run: RLRun, options: dict, resume: bool, force: bool) -> dict:
    """Make OUT this run's: --force clears warm rl's outputs; an existing run needs --resume (and the same options,
    but for RESUMABLE ones). Writes rl_config.json first; returns its previous payload (or {})."""
    meta = run.config_file
    if force:
        for directory in (run.checkpoints, run.final):
            shutil.rmtree(directory, ignore_errors=True)
        for path in (meta, run.metrics_file, run.eval_file, run.eval_samples_file, run.train_log_file,
                     run.monitor_file):
            path.unlink(missing_ok=True)
    started = any(path.exists() for path in (run.checkpoints, run.final, run.eval_file))
    # A run that failed before its first evaluation (a mistyped --reward, say) does not hold on to its options.
    previous = read_json(meta) if meta.is_file() and started else {}
    old = {RENAMED.get(key, key): value for key, value in previous.get("config", {}).items()}
    if previous:
        refuse_changed(meta, changed_settings(old, options, RESUMABLE), made="the run there used")
    if previous and not resume:
        raise WarmError(f"{run.root}: holds a warm rl run (pass --resume to continue it, --force to start again)")
    if not previous and started:
        raise WarmError(f"{run.root}: has warm rl outputs but no {meta.name} (pass --force to start again)")
    run.root.mkdir(parents=True, exist_ok=True)
    payload = {**previous, "status": "running", "config": options}
    write_json(meta, payload)
    return payload


def _finished(run: RLRun, config: RLConfig) -> bool:
    if not run.metrics_file.is_file() or not run.final.is_dir():
        return False
    metrics = read_json(run.metrics_file)
    # A run the monitor stopped is over: resuming would train on past the alarm.
    return metrics.get("steps") == config.steps or bool((metrics.get("monitor") or {}).get("stopped"))


# --- the reward-hacking monitor ------------------------------------------------------------------------------------


def _monitor(config: RLConfig, eval_items: list[dict], proxy, control, members, scorer_options: dict):
    """The monitor over the first --monitor-prompts held-out prompts, calibrated on --monitor-calibration."""
    from warm.apply.rl.monitor import HackingMonitor

    if config.monitor_calibration is not None and members is None:
        raise WarmError(f"--monitor-calibration {config.monitor_calibration}: calibrates the members' disagreement, "
                        "but the monitor has no members (the proxy is not an ensemble or a WARM merge; pass "
                        "--monitor-members DIR1,DIR2)")
    return HackingMonitor(eval_items[:config.monitor_prompts], proxy, control=control, members=members,
                          every=config.monitor_every, rules=config.alarm_rules(),
                          calibration=config.monitor_calibration,
                          stop_on_hacking=config.stop_on_hacking, path=RLRun(Path(config.out)).monitor_file,
                          seed=config.seed, temperature=config.temperature, max_new_tokens=config.max_new_tokens,
                          batch_size=config.eval_batch_size)


def _monitor_members(config: RLConfig, proxy, members: Any, reward: Any, scorer_options: dict):
    """Whose disagreement the monitor measures: `members` (Python), --monitor-members (a spec, or none), else the
    proxy's own: an ensemble's members, or those a WARM merge lists in its warm_merge.json."""
    from warm.models.loading import resolve_model_path
    from warm.score.uncertainty import members_scorer

    if members is not None:
        return members
    spec = config.monitor_members
    if spec is not None:
        return None if spec.strip().lower() == "none" else members_scorer(spec, **scorer_options)
    scorer = getattr(proxy, "scorer", None)
    if hasattr(scorer, "reduction") and len(getattr(scorer, "members", ())) > 1:
        return scorer  # an ensemble proxy already holds its members
    if reward is None and (Path(resolve_model_path(config.reward)) / MERGE_FILE).is_file():
        try:
            return members_scorer(config.reward, **scorer_options)
        except WarmError as exc:
            raise WarmError(f"{exc}; pass --monitor-members DIR1,DIR2 (where they are now) or --monitor-members "
                            "none") from None
    return None


def _split(items: list[dict], config: RLConfig) -> tuple[list[dict], list[dict]]:
    """(training prompts, held-out prompts): --eval-prompts as given, or a seeded --eval-fraction of --prompts."""
    if config.eval_prompts is not None:
        from warm.apply.sampling.prompts import read_prompts

        return items, read_prompts(config.eval_prompts)
    if len(items) < 2:
        raise WarmError(f"{config.prompts}: needs at least 2 prompts to hold some out (or pass --eval-prompts)")
    n_eval = min(len(items) - 1, max(1, round(config.eval_fraction * len(items))))
    held = set(random.Random(config.seed).sample(range(len(items)), n_eval))
    return ([item for i, item in enumerate(items) if i not in held],
            [item for i, item in enumerate(items) if i in held])


def _checkpoint_step(checkpoint: str | None) -> int:
    return 0 if checkpoint is None else int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _versions() -> dict:
    import torch
    import transformers
    import trl

    return {"trl_version": trl.__version__, "transformers_version": transformers.__version__,
            "torch_version": torch.__version__}
