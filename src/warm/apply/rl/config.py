"""`warm rl`'s options: one frozen dataclass, turned into the command's flags (help written once, here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from warm.config import precision_field, trust_remote_code_field
from warm.defaults import DEFAULT_POLICY
from warm.errors import WarmError

# Options that may change when a run is resumed: its length (resume to a later step) and how work is batched.
RESUMABLE = ("steps", "eval_batch_size", "reward_batch_size", "keep_checkpoints")
# Options renamed since a run could have recorded them: read old rl_config.json files under the new names.
RENAMED = {"lora": "lora_r"}


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass(frozen=True)
class RLConfig:
    reward: str = field(metadata=_help(
        "Proxy reward the policy is trained on, a scorer spec: DIR (one reward model or a WARM merge), DIR1,DIR2 "
        "(ensemble mean), min:DIR1,DIR2, mean_minus_std=0.5:DIR1,DIR2."))
    prompts: str = field(metadata=_help(
        "Training prompts (.jsonl, .jsonl.gz, .json, .parquet, .csv) with a prompt (or instruction, query) column: "
        "text or {role, content} messages; optional prompt_id."))
    kl_coef: float = field(metadata=_help(
        "KL coefficient (TRL's beta), subtracted from the reward: r - C * KL(policy || initial). The paper uses "
        "0.003 with clean labels, 0.01 with corrupted ones."))
    steps: int = field(metadata=_help("Optimiser steps (each on --batch-size prompts x --num-generations responses)."))
    out: str = field(metadata=_help("Run directory (rl_config.json, eval.jsonl, checkpoints/, final/, metrics.json)."))
    policy: str = field(default=DEFAULT_POLICY, metadata=_help(
        "Initial policy: a local causal-LM directory, a cached hub id or the packaged SmolLM2-135M-Instruct."))
    lora_r: int = field(default=0, metadata=_help("LoRA rank (PEFT, all linear layers); 0 trains every weight.",
                                                  aliases=("--lora",)))
    lora_alpha: float | None = field(default=None, metadata=_help("LoRA alpha. Default: twice the rank."))
    control: str | None = field(default=None, metadata=_help(
        "Control reward (scorer spec), never trained on, evaluated beside the proxy: its fall reveals hacking."))
    eval_every: int = field(default=25, metadata=_help("Evaluate and save a checkpoint every K steps (and at 0)."))
    eval_prompts: str | None = field(default=None, metadata=_help(
        "Held-out prompts to evaluate on. Default: --eval-fraction of --prompts, held out from training."))
    eval_fraction: float = field(default=0.1, metadata=_help(
        "Without --eval-prompts: this fraction of --prompts (a seeded draw, at least one) is held out."))
    num_generations: int = field(default=4, metadata=_help(
        "Responses per prompt (RLOO's group: each response's baseline is the mean reward of the others); >= 2."))
    max_new_tokens: int = field(default=128, metadata=_help("Token budget per response."))
    temperature: float = field(default=0.9, metadata=_help("Sampling temperature, in training and evaluation."))
    lr: float = field(default=1e-5, metadata=_help("Learning rate (AdamW, constant)."))
    batch_size: int = field(default=8, metadata=_help("Prompts per step."))
    seed: int = field(default=0, metadata=_help("Seed of training, the held-out draw and the evaluation samples."))
    eval_batch_size: int = field(default=16, metadata=_help("Prompts per generation batch in evaluations."))
    reward_max_length: int | None = field(default=None, metadata=_help(
        "Token budget per (prompt, response) for the rewards. Default: each reward model's own (its input contract)."))
    reward_batch_size: int = field(default=32, metadata=_help("Sequences per reward-model forward pass."))
    precision: str = precision_field("Policy and reward", note=(
        "auto is float32 for the policy on a CPU, where bf16 is slower for generation (reward models: bf16 where "
        "supported); weights stay float32 under bf16 autocast."))
    keep_checkpoints: int = field(default=2, metadata=_help("Checkpoints kept (the latest); 0 keeps all."))
    trust_remote_code: bool = trust_remote_code_field()
    # The reward-hacking monitor (warm.apply.rl.monitor; its rules and their defaults: warm.apply.rl.alarms).
    monitor_every: int = field(default=0, metadata=_help(
        "Run the reward-hacking monitor every K steps (and at 0): a fixed probe of held-out prompts answered by the "
        "policy, scored by the proxy, its members' disagreement and the control, with the KL; logged with TRL's "
        "metrics (monitor/*) and to OUT/monitor.jsonl. 0: off."))
    monitor_prompts: int = field(default=16, metadata=_help(
        "Probe size: the first N held-out prompts (members score these only, never the rollouts)."))
    monitor_members: str | None = field(default=None, metadata=_help(
        "Members whose disagreement the monitor measures (a scorer spec: DIR1,DIR2,...), or none. Default: the "
        "proxy's own: an ensemble's members, or those a WARM merge lists in its warm_merge.json."))
    monitor_calibration: str | None = field(default=None, metadata=_help(
        "Held-out preference pairs on which the members' usual disagreement is measured (its --monitor-quantile is "
        "the threshold). Default: the initial policy's own probe responses."))
    monitor_quantile: float = field(default=0.95, metadata=_help(
        "Quantile of the members' std (on the calibration) beyond which a response counts as out of their data."))
    monitor_fraction: float = field(default=0.25, metadata=_help(
        "Alarm when the share of probe responses beyond that threshold has risen by this much since step 0."))
    monitor_window: int = field(default=4, metadata=_help(
        "Probes over which the control's and the proxy's slopes are fitted (alarm: control falls, proxy rises)."))
    monitor_z: float = field(default=3.0, metadata=_help(
        "Standard errors (over probe prompts) by which the control's slope must be below zero."))
    monitor_patience: int = field(default=2, metadata=_help("Consecutive probes a rule must hold to raise the alarm."))
    stop_on_hacking: bool = field(default=False, metadata=_help(
        "Stop training when the monitor raises its alarm (the last good checkpoint is in metrics.json)."))

    def alarm_rules(self):
        from warm.apply.rl.alarms import AlarmRules

        return AlarmRules(window=self.monitor_window, z=self.monitor_z, patience=self.monitor_patience,
                          quantile=self.monitor_quantile, fraction=self.monitor_fraction)


def check_config(config: RLConfig) -> None:
    for name in ("steps", "eval_every", "max_new_tokens", "batch_size", "eval_batch_size", "reward_max_length",
                 "reward_batch_size"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise WarmError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.num_generations < 2:
        raise WarmError(f"num_generations must be at least 2 (RLOO's baseline needs another response), "
                        f"got {config.num_generations}")
    if config.kl_coef < 0:
        raise WarmError(f"kl_coef must be >= 0, got {config.kl_coef}")
    if not config.temperature > 0:
        raise WarmError(f"temperature must be positive, got {config.temperature}")
    if not 0 < config.eval_fraction < 1:
        raise WarmError(f"eval_fraction must be in (0, 1), got {config.eval_fraction}")
    if config.lora_r < 0 or config.keep_checkpoints < 0:
        raise WarmError("lora_r and keep_checkpoints must be >= 0")
    if not config.lr > 0:
        raise WarmError(f"lr must be positive, got {config.lr}")
    if config.monitor_every < 0 or config.monitor_prompts < 1:
        raise WarmError(f"monitor_every must be >= 0 and monitor_prompts >= 1, got {config.monitor_every} and "
                        f"{config.monitor_prompts}")
    if config.stop_on_hacking and not config.monitor_every:
        raise WarmError("stop_on_hacking needs the monitor: pass --monitor-every K")
    config.alarm_rules()  # its own checks of the rules' bounds
