"""`warm rl`'s trainer: TRL's RLOOTrainer set up as the paper's RL setting (warm.apply.rl.run), and the policy it
saves."""

from __future__ import annotations

from pathlib import Path

from warm.apply.rl.config import RLConfig
from warm.fileio import atomic_directory, write_json
from warm.models.runtime import trainer_arguments
from warm.rundir import RL_POLICY_FILE, RLRun


def make_trainer(config: RLConfig, model, tokenizer, train_items: list[dict], reward, device: str, precision: str,
                 callbacks: list):
    """RLOOTrainer: REINFORCE leave-one-out, KL in the reward with beta = --kl-coef, one update per batch, constant
    learning rate, dropout off, a checkpoint with every evaluation (see warm.apply.rl.run)."""
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback
    from trl import RLOOConfig, RLOOTrainer

    # Prompts go to TRL as the policy reads them: a conversation (TRL applies the chat template with the
    # generation prompt, as `warm generate` does) when the tokenizer has a template, else the raw text.
    chat = bool(getattr(tokenizer, "chat_template", None))
    rows = [{"prompt": [{"role": "user", "content": item["prompt"]}] if chat and isinstance(item["prompt"], str)
             else item["prompt"]} for item in train_items]
    args = RLOOConfig(**trainer_arguments(
        precision, device, progress=False,  # the evaluation callback draws the one progress line
        output_dir=str(RLRun(Path(config.out)).checkpoints), max_steps=config.steps,
        per_device_train_batch_size=config.batch_size * config.num_generations,
        num_generations=config.num_generations, max_completion_length=config.max_new_tokens,
        temperature=config.temperature, top_p=1.0, top_k=0, beta=config.kl_coef, num_iterations=1,
        learning_rate=config.lr, lr_scheduler_type="constant", warmup_steps=0, seed=config.seed,
        disable_dropout=True, logging_steps=1, save_strategy="steps", save_steps=config.eval_every,
        save_total_limit=config.keep_checkpoints or None,
    ))
    peft_config = None
    if config.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha or 2 * config.lora_r,
                                 lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = RLOOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, callbacks=callbacks, peft_config=peft_config)
    for noisy in (PrinterCallback, ProgressCallback):  # the eval callback draws the one progress line
        trainer.remove_callback(noisy)
    return trainer


def save_final(final: Path, model, tokenizer, options: dict, resolved: dict) -> None:
    """The trained policy as a standard HF directory (LoRA merged into the weights), written atomically."""
    from warm.apply.rl.evaluation import is_peft

    if is_peft(model):
        model = model.merge_and_unload()
    with atomic_directory(final, force=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / RL_POLICY_FILE, {"config": options, "resolved": resolved})
