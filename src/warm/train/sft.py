"""`warm sft`: continue training a backbone with its own LM objective, saving checkpoints along ONE run.

The paper starts every reward model from an SFT checkpoint; its Baklava variant (Ramé et al. 2024, Sec. 3.1,
Fig. 5) starts members from different checkpoints of one SFT run: more diversity, still linearly connected. For
an encoder backbone such as MiniLM the analogue of SFT is continued masked-LM training on the domain's text, so
the objective follows the model: masked LM for encoders, causal LM for decoders (`lm_objective`).

Sequences are exactly the ones the reward model will read: each (prompt, response) is encoded by the input
contract a reward model built from this backbone gets (warm.data.contract: same template, special tokens and
truncation). Checkpoints are standard HF
directories that `warm init --model DIR/step-000100` loads; a MaskedLM checkpoint lacks the tensors its LM head
does not use (BERT's pooler), so those are carried over unchanged from the base model (`_carried_tensors`),
otherwise `warm init` would draw them at random. A backbone shipped without its LM head (all-MiniLM-L6-v2 is a
sentence encoder) gets one drawn from --seed and trained along; its loss starts near ln(vocabulary size).

Resuming restarts from the base model and keeps the checkpoints already written with the same run key: a
mid-run resume would need the optimizer and RNG states in every checkpoint (about three times the weights), and
these checkpoints are meant to be published and loaded as they are; the runs are short.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

from warm import __version__
from warm.config import to_dict
from warm.data.contract import PairEncoder, new_contract
from warm.errors import WarmError
from warm.train.sft_config import SFTConfig
from warm.train.sft_data import load_sequences, texts_sha256
from warm.train.checkpoints import SaveAtSteps
from warm.fileio import atomic_directory, read_json, sha256_json, write_json
from warm.models.init import weights_fingerprint
from warm.models.loading import quiet_transformers, load_tokenizer, resolve_model_path
from warm.models.runtime import default_device, quiet, resolve_precision, trainer_arguments
from warm.rundir import SFT_FILE, SFTRun, refuse_changed, timestamp

def checkpoint_dir(out: str | Path, step: int) -> Path:
    return SFTRun(Path(out)).checkpoint(step)


def lm_objective(model_config, requested: str = "auto") -> str:
    """'mlm' or 'clm'. Encoders have a masked-LM head class and no `is_decoder`; BERT is in both mappings
    (BertLMHeadModel), and GPT/Llama configs leave `is_decoder` False, so the masked-LM mapping decides."""
    if requested != "auto":
        return requested
    kind = model_config.model_type
    if not getattr(model_config, "is_decoder", False) and kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "mlm"
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "clm"
    raise WarmError(f"model type {kind!r} has neither a masked-LM nor a causal-LM head class; pass --objective")


def _carried_tensors(source: str, model, trust_remote_code: bool) -> dict[str, torch.Tensor]:
    """Base-model tensors the LM model does not hold (BERT's pooler: BertForMaskedLM builds BertModel without
    it). MLM training never touches them, so carrying them unchanged keeps step N's reward model equal to the
    base model's except where SFT trained it."""
    with torch.device("meta"):
        skeleton = AutoModel.from_config(model.config, trust_remote_code=trust_remote_code)
    absent = set(skeleton.state_dict()) - set(model.base_model.state_dict())
    if not absent:
        return {}
    with quiet_transformers():
        base, info = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code, output_loading_info=True)
    loaded = absent - set(info.get("missing_keys", ()))  # a tensor the base checkpoint lacks is not carried
    prefix = model.base_model_prefix
    return {f"{prefix}.{k}": v.detach().clone() for k, v in base.state_dict().items() if k in loaded}


class _CountingCollator:
    """The LM collator, counting the sequences and real (non-pad) tokens it hands out, for the speed figures."""

    def __init__(self, collator):
        self.collator, self.sequences, self.tokens = collator, 0, 0

    def __call__(self, features):
        batch = self.collator(features)
        self.sequences += len(features)
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        return batch


def masked_lm_head(model):
    """The one module mapping hidden states to vocabulary logits (BERT's `cls`, RoBERTa's `lm_head`), checked on
    a probe against the model's own forward; None when the model is not built that way."""
    heads = [module for name, module in model.named_children() if name != model.base_model_prefix]
    if len(heads) != 1:
        return None
    probe = torch.arange(5, 13).unsqueeze(0) % model.config.vocab_size
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full, own = model(input_ids=probe).logits, heads[0](model.base_model(input_ids=probe)[0])
        same = full.shape == own.shape and torch.allclose(full, own, atol=1e-5)
    except Exception:  # noqa: BLE001 - a head with another signature simply takes the model's own forward
        same = False
    finally:
        model.train(was_training)
    return heads[0] if same else None


def masked_positions_loss(model, head, inputs: dict) -> torch.Tensor:
    """The masked-LM loss with vocabulary logits at the masked positions only, equal to the model's own loss.
    The projection to the vocabulary at every position costs more than MiniLM's encoder (384 x 30522 per token):
    measured on the 2-core CPU, batch 16 x 128 in bf16, 2.8 s -> 1.0 s per training step."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    hidden = model.base_model(**inputs)[0]
    picked = labels != -100
    if not picked.any():
        return hidden.sum() * 0.0  # nothing masked in this batch: no signal, but a graph for backward
    return torch.nn.functional.cross_entropy(head(hidden[picked]).float(), labels[picked])


def _trainer_class(head):
    from transformers import Trainer

    if head is None:
        return Trainer

    class MaskedPositionsTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model is not self.model or return_outputs:  # wrapped (distributed) or asked for outputs
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return masked_positions_loss(model, head, inputs)

    return MaskedPositionsTrainer


def run_sft(config: SFTConfig, progress: bool = True) -> dict:
    """Train to the last save step, writing each checkpoint; return sft.json's payload (or, when every
    checkpoint exists already, {"status": "complete", ...} without training)."""
    out, source = Path(config.out), resolve_model_path(config.model)
    device = default_device()
    precision = resolve_precision(config.precision, device)
    tokenizer = load_tokenizer(source, trust_remote_code=config.trust_remote_code)
    objective = lm_objective(AutoConfig.from_pretrained(source, trust_remote_code=config.trust_remote_code),
                             config.objective)
    if objective == "mlm" and tokenizer.mask_token is None:
        raise WarmError(f"{config.model}: masked-LM training needs a tokenizer with a mask token")
    texts, data_info = load_sequences(config, tokenizer)
    renderer = copy.deepcopy(tokenizer)  # warm's fallback chat template must not travel with the checkpoints
    encoder = PairEncoder(renderer, new_contract(renderer, config.max_length))  # what `warm init` will give them
    data_info.update(source=config.data, sha256=texts_sha256(texts), n_sequences=len(texts), limit=config.limit)
    try:
        base_fingerprint = weights_fingerprint(source)
    except WarmError:  # a hub id or .bin weights: the name stands in
        base_fingerprint = None
    final = config.save_steps[-1]
    # What decides the weights at step N: everything but where they go and which other steps are saved.
    unkeyed = ("out", "force", "save_steps", "data", "model", "precision")  # hashed or resolved values stand in
    keyed = {k: v for k, v in to_dict(config).items() if k not in unkeyed}
    run_key = sha256_json({**keyed, "max_steps": final, "precision": precision, "objective": objective,
                           "data_sha256": data_info["sha256"], "base": base_fingerprint or config.model,
                           "inputs": {**encoder.contract.to_json(), "template": renderer.chat_template}})
    kept = _kept_checkpoints(config, run_key)
    if len(kept) == len(config.save_steps):
        return {"status": "complete", "checkpoints": [str(checkpoint_dir(out, s)) for s in config.save_steps]}

    ids, cuts = encoder.encode_many([p for p, _ in texts], [r for _, r in texts], where=config.data)
    data_info.update(n_truncated=sum(cuts), mean_tokens=sum(map(len, ids)) / len(ids))

    torch.manual_seed(config.seed)  # an LM head missing from the checkpoint (MiniLM ships none) is drawn now
    auto_class = AutoModelForMaskedLM if objective == "mlm" else AutoModelForCausalLM
    with quiet_transformers():
        model, info = auto_class.from_pretrained(source, trust_remote_code=config.trust_remote_code,
                                                 output_loading_info=True)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))  # a <pad> token was added (see ensure_pad_token)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    carried = _carried_tensors(source, model, config.trust_remote_code)
    head = masked_lm_head(model) if objective == "mlm" else None
    common = {"run_key": run_key, "objective": objective, "base_model": config.model, "base_model_path": source,
              "base_fingerprint": base_fingerprint, "data": data_info, "config": to_dict(config),
              "precision": precision, "lm_head_drawn": sorted(info.get("missing_keys", ())),
              "carried_from_base": sorted(carried), "logits_at_masked_positions_only": head is not None,
              "warm_version": __version__}
    written: dict[int, dict] = dict(kept)
    base_use_cache = getattr(model.config, "use_cache", None)  # the Trainer sets it False for training

    def save(step: int, trained, history: list[dict]) -> None:
        if step in kept:
            return
        with atomic_directory(checkpoint_dir(out, step), force=True) as tmp:
            training_use_cache, trained.config.use_cache = trained.config.use_cache, base_use_cache
            trained.save_pretrained(tmp, state_dict={**trained.state_dict(), **carried})
            trained.config.use_cache = training_use_cache
            tokenizer.save_pretrained(tmp)
            written[step] = {"step": step, "loss": history[-1]["loss"], "loss_history": history, **common,
                             "created": timestamp()}
            write_json(Path(tmp) / SFT_FILE, written[step])

    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, TrainingArguments

    collator = _CountingCollator(DataCollatorForLanguageModeling(
        tokenizer, mlm=objective == "mlm", mlm_probability=config.mlm_probability, seed=config.seed))
    saver = SaveAtSteps(config.save_steps, save)
    with tempfile.TemporaryDirectory(prefix="warm-sft-trainer-") as scratch:  # the Trainer insists on one
        args = TrainingArguments(**trainer_arguments(
            precision, device, progress,
            output_dir=scratch, learning_rate=config.lr, per_device_train_batch_size=config.batch_size,
            max_steps=final, seed=config.seed, data_seed=config.seed, warmup_steps=config.warmup_ratio,
            weight_decay=config.weight_decay, lr_scheduler_type="linear", logging_steps=max(1, final // 20),
            logging_first_step=True))
        trainer = _trainer_class(head)(model=model, args=args, train_dataset=Dataset.from_dict({"input_ids": ids}),
                                       data_collator=collator, processing_class=tokenizer, callbacks=[saver])
        quiet(trainer, progress)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start
    train_seconds = max(wall - saver.seconds, 1e-9)
    payload = {
        "status": "trained", **common, "save_steps": list(config.save_steps),
        "checkpoints": [{"step": s, "dir": str(checkpoint_dir(out, s)), "loss": written[s]["loss"],
                         "reused": s in kept} for s in config.save_steps],
        "log_history": [e for e in trainer.state.log_history if "loss" in e],
        "steps": trainer.state.global_step, "wall_seconds": wall, "save_seconds": saver.seconds,
        "sequences_per_second": collator.sequences / train_seconds, "tokens_per_second": collator.tokens / train_seconds,
        "device": device, "threads": torch.get_num_threads() if device == "cpu" else None,
        "finished": timestamp(),
    }
    write_json(SFTRun(out).summary_file, payload)
    return payload


def _kept_checkpoints(config: SFTConfig, run_key: str) -> dict[int, dict]:
    """Checkpoints of this very run already on disk (their warm_sft.json), which a restart leaves alone."""
    out, kept = Path(config.out), {}
    for stale in out.glob(".step-*.tmp"):  # a killed run leaves only the temporary directory of a checkpoint
        shutil.rmtree(stale, ignore_errors=True)
    for step in config.save_steps:
        meta_path = checkpoint_dir(out, step) / SFT_FILE
        if not meta_path.exists() or config.force:
            continue
        meta = read_json(meta_path)
        if meta.get("run_key") != run_key:  # the key hashes the settings, so which one changed is not known here
            refuse_changed(meta_path.parent, ["other settings or data"], made="written by a run with",
                           advice="pass --force to replace it")
        kept[step] = meta
    return kept
