"""Linear probing of the shared reward head (LP-init): backbone frozen, head trained on preference pairs.

Kumar et al. (2022) show that probing the head before fine-tuning limits feature distortion; WARM's members all
start from the probed head (Ramé et al. 2024, Sec. 3). Uses the same TRL training path as members.
"""

from __future__ import annotations

from contextlib import contextmanager

from warm.config import InitConfig
from warm.data.contract import PairEncoder
from warm.data.formats import load_preferences
from warm.data.tokenize import tokenize_pairs
from warm.errors import WarmError
from warm.models.runtime import default_device, resolve_precision
from warm.train.fit import FitSettings, fit_reward_model, pairs_dataset


@contextmanager
def frozen_features(model):
    """Keep `model` in eval mode while the Trainer fits its head, then restore `train`.

    A linear probe fits a head on the frozen backbone's features (Kumar et al. 2022), so the features are the
    deterministic eval-mode ones. The Trainer switches the model to train mode at every step, which would draw
    dropout masks on the frozen layers and, with dropout on the attention probabilities, send PyTorch's attention to
    its unfused path (measured: the probe ran several times slower than a member's whole training step).
    """
    train = model.train
    model.train = lambda mode=True: train(False)
    try:
        yield model.eval()
    finally:
        del model.train  # the instance attribute goes, the class's method is back


def linear_probe(model, encoder: PairEncoder, config: InitConfig, head: list[str], progress: bool = True) -> dict:
    """Train only the `head` parameters of `model` in place, on inputs made by `encoder`; return the metrics."""
    data = load_preferences(config.linear_probe, prompt_key=config.prompt_key, chosen_key=config.chosen_key,
                            rejected_key=config.rejected_key)
    pairs = tokenize_pairs(encoder, data)
    trainable = set(head)
    names = {name for name, _ in model.named_parameters()}
    if not trainable & names:
        raise WarmError(f"head parameters {sorted(trainable)} not found in {type(model).__name__}")
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
    # The precision members train at by default (bf16 autocast where supported; the weights stay float32).
    settings = FitSettings(learning_rate=config.probe_lr, batch_size=config.probe_batch_size, epochs=1.0,
                           max_steps=config.probe_steps, seed=config.head_seed, warmup_ratio=0.0,
                           precision=resolve_precision("auto", default_device()))
    with frozen_features(model):
        metrics = fit_reward_model(model, encoder.tokenizer, pairs_dataset(pairs, data.margin), settings,
                                   progress=progress)
    for param in model.parameters():
        param.requires_grad_(True)
    return {"data": config.linear_probe, "n_pairs": len(data), **{k: v for k, v in metrics.items() if k != "log_history"}}
