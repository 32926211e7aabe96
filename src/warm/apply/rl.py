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
- The reference is the initial policy: a frozen copy, or the base model under the LoRA adapter (`--lora r`).
- Constant learning rate (no decay): a run extended with `--resume --steps` larger follows the same schedule as a
  run started with that many steps. Dropout is off so log-probabilities (the KL, the ratio) are deterministic.

Nothing is missing from TRL for this; warm adds the held-out evaluation (`warm.apply.rl_eval`), the run directory
contract below and resumption.

OUT/ holds: rl_config.json (written first: the options and what they resolved to), eval.jsonl (one row per
evaluation), eval_samples.jsonl (the evaluated responses), train_log.jsonl (TRL's per-step logs: reward, kl,
lengths), checkpoints/checkpoint-N (Trainer checkpoints every --eval-every steps, the last --keep-checkpoints kept),
final/ (the trained policy, a standard HF directory, LoRA merged in, plus warm_rl.json) and metrics.json (at the end).
"""

from __future__ import annotations

import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, write_json
from warm.models.policy import DEFAULT_POLICY

CONFIG_FILE = "rl_config.json"
METRICS_FILE = "metrics.json"
CHECKPOINTS = "checkpoints"
FINAL = "final"
# Options that may change when a run is resumed: its length (resume to a later step) and how work is batched.
RESUMABLE = ("steps", "eval_batch_size", "reward_batch_size", "keep_checkpoints")


def _help(text: str) -> dict:
    return {"help": text}


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
    lora: int = field(default=0, metadata=_help("LoRA rank (PEFT, all linear layers); 0 trains every weight."))
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
    precision: str = field(default="auto", metadata=_help(
        "auto, fp32 or bf16 (autocast; weights stay float32). auto: bf16 on a GPU that supports it, float32 for "
        "the policy on a CPU (reward models: bf16 where supported)."))
    keep_checkpoints: int = field(default=2, metadata=_help("Checkpoints kept (the latest); 0 keeps all."))
    trust_remote_code: bool = field(default=False, metadata=_help("Allow model code from the checkpoints."))


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
    if config.lora < 0 or config.keep_checkpoints < 0:
        raise WarmError("lora and keep_checkpoints must be >= 0")
    if not config.lr > 0:
        raise WarmError(f"lr must be positive, got {config.lr}")


def run_rl(config: RLConfig, *, resume: bool = False, force: bool = False, reward: Any = None, control: Any = None,
           progress: bool = True, callbacks: tuple = ()) -> dict:
    """Train, evaluate and save as the module docstring says; return metrics.json's payload.

    `reward` / `control` may be given as Python objects instead of the specs in `config` (a warm scorer, or a
    callable `f(prompts, responses) -> floats`, e.g. a constructed reward in tests); `config.reward` then only
    names it. `callbacks` are extra transformers TrainerCallbacks.
    """
    from warm.config import to_dict

    check_config(config)
    out = Path(config.out)
    options = to_dict(config)
    previous = _claim(out, options, resume, force)
    if resume and _finished(out, config):
        write_json(out / CONFIG_FILE, {**previous, "status": "complete"})
        return read_json(out / METRICS_FILE)
    started = time.perf_counter()

    import torch

    from warm.apply.generate import load_policy, read_prompts
    from warm.apply.rl_eval import RLEvalCallback
    from warm.integrations.trl import WarmRewardFunction
    from warm.models.loading import quiet_transformers
    from warm.models.policy import resolve_policy
    from warm.models.precision import resolve_precision

    items = read_prompts(config.prompts)
    train_items, eval_items = _split(items, config)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # auto is float32 for the policy on a CPU: generation dominates RL and bf16 matmuls there are slower for it
    # (as in `warm generate`); reward models follow warm's usual rule (bf16 where supported).
    reward_precision = resolve_precision(config.precision, device)
    precision = "fp32" if config.precision == "auto" and device == "cpu" else reward_precision
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
    write_json(out / CONFIG_FILE, {**previous, "status": "running", "config": options, "resolved": resolved})

    checkpoint = last_complete_checkpoint(out / CHECKPOINTS) if resume else None
    evaluator = RLEvalCallback(out, eval_items, tokenizer, proxy, judge, every=config.eval_every,
                               temperature=config.temperature, max_new_tokens=config.max_new_tokens,
                               seed=config.seed, batch_size=config.eval_batch_size, total_steps=config.steps,
                               progress=progress, source=config.eval_prompts or config.prompts)
    evaluator.load_done(_checkpoint_step(checkpoint))
    # transformers' weight-loading and shard-writing bars (TRL's reference model, every checkpoint) and info logs
    # would bury the one progress line; warnings that matter surface as errors.
    with quiet_transformers(), warnings.catch_warnings():
        # TRL 1.16 still calls transformers' deprecated `is_gradient_checkpointing` on every step.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        trainer = _trainer(config, model, tokenizer, train_items, proxy, device, precision, [evaluator, *callbacks])
        evaluator.bind(trainer)
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            evaluator.close()
        _save_final(out / FINAL, trainer.model, tokenizer, options, resolved)
    train_logs = [row for row in trainer.state.log_history if "reward" in row]
    metrics = {"status": "complete", "steps": trainer.state.global_step,
               "resumed_from_step": _checkpoint_step(checkpoint),
               "wall_seconds": round(time.perf_counter() - started, 3),
               "initial_eval": next((row for row in evaluator.rows if row["step"] == 0), None),
               "last_eval": evaluator.rows[-1] if evaluator.rows else None,
               "last_train_log": train_logs[-1] if train_logs else None,
               "final": str(out / FINAL)}
    write_json(out / METRICS_FILE, metrics)
    write_json(out / CONFIG_FILE, {"status": "complete", "config": options, "resolved": resolved})
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


def _claim(out: Path, options: dict, resume: bool, force: bool) -> dict:
    """Make OUT this run's: --force clears warm rl's outputs; an existing run needs --resume (and the same options,
    but for RESUMABLE ones). Writes rl_config.json first; returns its previous payload (or {})."""
    meta = out / CONFIG_FILE
    if force:
        for name in (CHECKPOINTS, FINAL):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in (CONFIG_FILE, METRICS_FILE, "eval.jsonl", "eval_samples.jsonl", "train_log.jsonl"):
            (out / name).unlink(missing_ok=True)
    started = any((out / name).exists() for name in (CHECKPOINTS, FINAL, "eval.jsonl"))
    # A run that failed before its first evaluation (a mistyped --reward, say) does not hold on to its options.
    previous = read_json(meta) if meta.is_file() and started else {}
    old = previous.get("config", {})
    changed = [key for key in sorted(set(old) | set(options))
               if key not in RESUMABLE and old.get(key) != options.get(key)]
    if previous and changed:
        what = ", ".join(f"{key}={old.get(key)!r}, not {options.get(key)!r}" for key in changed)
        raise WarmError(f"{meta}: the run there used {what} (pass --force to start again)")
    if previous and not resume:
        raise WarmError(f"{out}: holds a warm rl run (pass --resume to continue it, --force to start again)")
    if not previous and started:
        raise WarmError(f"{out}: has warm rl outputs but no {CONFIG_FILE} (pass --force to start again)")
    out.mkdir(parents=True, exist_ok=True)
    payload = {**previous, "status": "running", "config": options}
    write_json(meta, payload)
    return payload


def _finished(out: Path, config: RLConfig) -> bool:
    if not (out / METRICS_FILE).is_file() or not (out / FINAL).is_dir():
        return False
    return read_json(out / METRICS_FILE).get("steps") == config.steps


def _split(items: list[dict], config: RLConfig) -> tuple[list[dict], list[dict]]:
    """(training prompts, held-out prompts): --eval-prompts as given, or a seeded --eval-fraction of --prompts."""
    if config.eval_prompts is not None:
        from warm.apply.generate import read_prompts

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


# --- TRL --------------------------------------------------------------------------------------------------------------


def _trainer(config: RLConfig, model, tokenizer, train_items: list[dict], reward, device: str, precision: str,
             callbacks: list):
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback
    from trl import RLOOConfig, RLOOTrainer

    # Prompts go to TRL as the policy reads them: a conversation (TRL applies the chat template with the
    # generation prompt, as `warm generate` does) when the tokenizer has a template, else the raw text.
    chat = bool(getattr(tokenizer, "chat_template", None))
    rows = [{"prompt": [{"role": "user", "content": item["prompt"]}] if chat and isinstance(item["prompt"], str)
             else item["prompt"]} for item in train_items]
    args = RLOOConfig(
        output_dir=str(Path(config.out) / CHECKPOINTS), max_steps=config.steps,
        per_device_train_batch_size=config.batch_size * config.num_generations,
        num_generations=config.num_generations, max_completion_length=config.max_new_tokens,
        temperature=config.temperature, top_p=1.0, top_k=0, beta=config.kl_coef, num_iterations=1,
        learning_rate=config.lr, lr_scheduler_type="constant", warmup_steps=0, seed=config.seed,
        disable_dropout=True, bf16=precision == "bf16", use_cpu=device == "cpu", **_no_activation_checkpointing(),
        logging_steps=1, save_strategy="steps", save_steps=config.eval_every,
        save_total_limit=config.keep_checkpoints or None, report_to=[], disable_tqdm=True,
    )
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora, lora_alpha=config.lora_alpha or 2 * config.lora, lora_dropout=0.0,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = RLOOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, callbacks=callbacks, peft_config=peft_config)
    for noisy in (PrinterCallback, ProgressCallback):  # the eval callback draws the one progress line
        trainer.remove_callback(noisy)
    return trainer


def _no_activation_checkpointing() -> dict:
    """TRL turns activation checkpointing on by default; a small policy does not need it (it slows every step).
    transformers 5.x renamed the option (`gradient_checkpointing` is a deprecated alias): use the name it has."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": False}


def _save_final(final: Path, model, tokenizer, options: dict, resolved: dict) -> None:
    """The trained policy as a standard HF directory (LoRA merged into the weights), written atomically."""
    from warm.apply.rl_eval import is_peft

    if is_peft(model):
        model = model.merge_and_unload()
    with atomic_directory(final, force=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / "warm_rl.json", {"config": options, "resolved": resolved})
