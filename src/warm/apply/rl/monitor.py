"""An early-warning monitor of reward hacking for TRL's online trainers (GRPO, RLOO; `warm rl --monitor-every`).

A policy hacks its reward model once it drifts where the model is wrong (Ramé et al. 2024, arXiv 2401.12187). Every
`every` steps, and at step 0, `HackingMonitor` has the policy answer a fixed probe of held-out prompts (the same
random numbers every time: warm.apply.rl.probe) and measures, on those responses only:
- the proxy reward (what the policy is trained on);
- the members' disagreement, when the proxy is a WARM merge whose members are on disk (or an ensemble): the mean std
  of the members' rewards, WARM minus their mean, and the share of responses beyond a threshold calibrated on
  held-out preference pairs (warm.score.uncertainty). M forward passes per probe prompt, never per rollout;
- the control reward, when given (a reward never trained on);
- the KL to the initial policy (Monte Carlo, as warm rl's evaluation).
They are logged as `monitor/*`, one row at the probe's step, through the Trainer's `log` (so W&B, TensorBoard and
trainer_state.json get them like TRL's metrics) and, with `path`, to a JSON-lines file. The rules of
warm.apply.rl.alarms decide when hacking has started; the alarm records the last good step and the latest Trainer
checkpoint at or before it, and with `stop_on_hacking` the Trainer stops.

    monitor = HackingMonitor(probe_prompts, proxy=reward, members="runs/x/warm", control="runs/control", every=10)
    trainer = GRPOTrainer(..., reward_funcs=reward, callbacks=[monitor])
    monitor.bind(trainer)   # the tokenizer, the initial policy for the KL, the logger
    trainer.train()
    monitor.alarm           # None, or {"rule", "step", "last_good_step", "last_good_checkpoint", "reason", ...}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers import TrainerCallback

from warm.apply.rl.alarms import AlarmRules, beyond_share, check_alarm
from warm.apply.rl.evaluation import append_rows, keep_rows_up_to, read_rows
from warm.apply.rl.probe import PolicyProbe
from warm.errors import WarmError
from warm.metrics import standard_error

PREFIX = "monitor/"
log = logging.getLogger("warm.monitor")


def _reward(value, scorer_kwargs: dict):
    """A WarmRewardFunction (its raw `score`) for a spec, a scorer or a callable; one already made as it is."""
    from warm.integrations.reward_function import WarmRewardFunction

    if value is None or isinstance(value, WarmRewardFunction):
        return value
    return WarmRewardFunction(value, **(scorer_kwargs if isinstance(value, (str, os.PathLike)) else {}))


def _items(probe: Sequence) -> list[dict]:
    items = [p if isinstance(p, dict) and "prompt" in p else {"prompt": p} for p in probe]
    if not items:
        raise WarmError("the monitor's probe has no prompts")
    return [{"prompt_id": item.get("prompt_id", i), "prompt": item["prompt"]} for i, item in enumerate(items)]


def checkpoint_at_or_before(output_dir: str | None, step: int) -> str | None:
    """The latest Trainer checkpoint (output_dir/checkpoint-N, complete) with N <= step, or None."""
    if not output_dir or not Path(output_dir).is_dir():
        return None
    found = [(int(p.name.split("-")[1]), p) for p in Path(output_dir).glob("checkpoint-*")
             if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()]
    found = [(n, p) for n, p in found if n <= step]
    return str(max(found)[1]) if found else None


class HackingMonitor(TrainerCallback):
    """See the module docstring. `probe`: prompts (text, {role, content} messages, or {prompt_id, prompt} rows).

    `proxy`, `control`: a scorer spec, a warm scorer, a WarmRewardFunction or `f(prompts, responses)`. `members`: a
    scorer spec (a WARM merge directory: the members its warm_merge.json lists; or DIR1,DIR2) or anything with
    `score_members(prompts, responses) -> [M, N]`. `calibration`: held-out preference pairs (a file or
    PreferenceData) whose members' std sets the disagreement threshold (`rules.quantile`); or `threshold` itself;
    else it is calibrated on the first probe (the initial policy's own responses). `temperature` and
    `max_new_tokens` default to the trainer's (`temperature`, `max_completion_length`).
    """

    def __init__(self, probe: Sequence, proxy: Any, *, control: Any = None, members: Any = None, every: int = 10,
                 rules: AlarmRules | None = None, calibration: Any = None, threshold: float | None = None,
                 stop_on_hacking: bool = False, path: str | os.PathLike | None = None, seed: int = 0,
                 temperature: float | None = None, max_new_tokens: int | None = None, batch_size: int = 16,
                 scorer_kwargs: dict | None = None) -> None:
        if every < 1:
            raise WarmError(f"the monitor's every must be at least 1, got {every}")
        scorer_kwargs = scorer_kwargs or {}
        self.items = _items(probe)
        self.proxy, self.control = _reward(proxy, scorer_kwargs), _reward(control, scorer_kwargs)
        if isinstance(members, (str, os.PathLike)):
            from warm.score.uncertainty import members_scorer

            members = members_scorer(os.fspath(members), **scorer_kwargs)
        self.members, self.calibration, self.threshold = members, calibration, threshold
        self.every, self.rules, self.stop_on_hacking = every, rules or AlarmRules(), stop_on_hacking
        self.path = None if path is None else Path(path)
        self.seed, self.temperature, self.max_new_tokens = seed, temperature, max_new_tokens
        self.batch_size = batch_size
        self.trainer, self.probe = None, None
        self.history: list[dict] = []
        self.alarm: dict | None = None

    # --- set-up --------------------------------------------------------------------------------------------------

    def bind(self, trainer) -> HackingMonitor:
        """Take the trainer's tokenizer, its initial policy (for the KL) and its logger; calibrate the threshold.
        Call it before `trainer.train()` (before a checkpoint is loaded)."""
        tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        args = trainer.args
        temperature = self.temperature or getattr(args, "temperature", None) or 1.0
        max_new_tokens = self.max_new_tokens or getattr(args, "max_completion_length", None) or 128
        self.probe = PolicyProbe(self.items, tokenizer, temperature=temperature, max_new_tokens=max_new_tokens,
                                 seed=self.seed, batch_size=self.batch_size, source="the monitor's probe")
        self.probe.bind(trainer)
        self.trainer = trainer
        if self.calibration is not None and self.threshold is None and self.members is not None:
            from warm.data.formats import PreferenceData, load_preferences
            from warm.score.uncertainty import calibrate_disagreement

            data = self.calibration
            data = data if isinstance(data, PreferenceData) else load_preferences(os.fspath(data))
            self.threshold = calibrate_disagreement(self.members, data, self.rules.quantile)
        return self

    def load_done(self, resume_step: int) -> None:
        """On resume from checkpoint `resume_step`: forget later probes, take back the history (and any alarm)."""
        if self.path is None:
            return
        keep_rows_up_to(self.path, resume_step)
        self.history = read_rows(self.path)
        if self.history and self.history[0].get("threshold") is not None:
            self.threshold = self.history[0]["threshold"]
        self.alarm = next((row["alarm"] for row in self.history if row.get("alarm")), None)

    # --- Trainer hooks --------------------------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.probe is None:
            raise WarmError("HackingMonitor: call monitor.bind(trainer) before trainer.train() (it takes the "
                            "tokenizer, the initial policy for the KL and the logger from the trainer)")
        self._maybe_probe(model, state.global_step, args, control)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._maybe_probe(model, state.global_step, args, control)

    def _maybe_probe(self, model, step: int, args, control) -> None:
        if model is None or any(row["step"] == step for row in self.history):
            return
        row = self.measure(model, step, output_dir=args.output_dir)
        self._log(row, control)
        if row.get("alarm") and self.stop_on_hacking:
            control.should_training_stop = True

    # --- one probe ------------------------------------------------------------------------------------------------

    def measure(self, model, step: int, output_dir: str | None = None) -> dict:
        """Probe the policy at `step`, append the row to the history (and `path`), check the alarm; the row."""
        samples = self.probe.sample(model)
        prompts = self.probe.prompts
        proxy = self.proxy.score(prompts, samples.texts)
        control = None if self.control is None else self.control.score(prompts, samples.texts)
        std = warm_minus_mean = None
        if self.members is not None:
            from warm.score.uncertainty import Uncertainty, member_rows

            spread = Uncertainty(proxy, member_rows(self.members, prompts, samples.texts),
                                 getattr(self.members, "weights", None))
            std, warm_minus_mean = spread.member_std, spread.warm_minus_mean
            if self.threshold is None:  # calibrated on the initial policy's own responses
                self.threshold = float(np.quantile(std, self.rules.quantile))
        row = {"step": step, "proxy": float(proxy.mean()), "proxy_sem": standard_error(proxy),
               "control": None if control is None else float(control.mean()),
               "control_sem": None if control is None else standard_error(control),
               "member_std": None if std is None else float(std.mean()),
               "warm_minus_mean": None if std is None else float(warm_minus_mean.mean()),
               "threshold": None if std is None else self.threshold,
               "kl": float(samples.kl.mean()), "kl_sem": standard_error(samples.kl),
               "response_tokens": float(np.mean([len(ids) for ids in samples.ids])),
               "items": {"proxy": proxy.tolist(), "control": None if control is None else control.tolist(),
                         "member_std": None if std is None else std.tolist()}}
        row["share_beyond"] = None if std is None else beyond_share(row, self.threshold)
        self.history.append(row)
        if self.alarm is None:
            alarm = check_alarm(self.history, self.rules)
            if alarm is not None:
                alarm["last_good_checkpoint"] = checkpoint_at_or_before(output_dir, alarm["last_good_step"])
                self.alarm = row["alarm"] = alarm
                log.warning("step %d: %s (last good checkpoint: %s)", step, alarm["reason"],
                            alarm["last_good_checkpoint"])
        row["alarm_raised"] = self.alarm is not None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_rows(self.path, [row])
        return row

    def _log(self, row: dict, control) -> None:
        """One log row at the probe's step, through the Trainer's own `log` (what TRL's metrics go through too, so
        every integration reports it). The base class's: TRL's override would take in, and clear, the metrics TRL
        is still gathering for its next row."""
        from transformers import Trainer

        keys = ("proxy", "control", "member_std", "warm_minus_mean", "share_beyond", "kl", "response_tokens")
        metrics = {PREFIX + key: float(row[key]) for key in keys if row.get(key) is not None}
        metrics[PREFIX + "alarm"] = float(row["alarm_raised"])
        should_log = control.should_log
        Trainer.log(self.trainer, metrics)
        # Logging clears should_log; the Trainer's own log of this step, decided before, must still happen.
        control.should_log = self.trainer.control.should_log = should_log
