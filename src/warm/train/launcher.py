"""`warm train`: prepare data once, write the plan, train every unfinished member (the local launcher).

Order of work, each step leaving a file behind so a rerun picks up where it stopped:
  RUN/train_config.json   the command's config
  RUN/data/train.jsonl.gz the pairs actually trained on (after --limit and --corrupt), with `corrupted` marks
  RUN/data/corruption.json which pairs were swapped (when --corrupt > 0)
  RUN/plan.json           the members and everything that decides what they learn
  RUN/members/mNN/        one HF directory per finished member, with warm_member.json
  RUN/train_metrics.json  per-member metrics, rewritten after each member
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from warm.config import TrainConfig, to_dict
from warm.data.corrupt import corrupt_labels, corruption_record
from warm.data.formats import PreferenceData, load_preferences, save_preferences
from warm.data.tokenize import tokenize_pairs
from warm.errors import WarmError
from warm.fileio import read_json, sha256_file, write_json
from warm.models.init import init_fingerprint
from warm.models.loading import load_tokenizer
from warm.models.precision import resolve_precision
from warm.train.member import finished_member, train_member
from warm.train.plan import make_plan, plan_differences


def _check_inits(inits: tuple[str, ...]) -> dict[str, str]:
    if not inits:
        raise WarmError("--init: give at least one init directory (from `warm init`)")
    fingerprints, vocab = {}, None
    for init in inits:
        path = Path(init)
        if not (path / "config.json").exists():
            raise WarmError(f"{init}: not a model directory (no config.json); build one with `warm init`")
        this_vocab = load_tokenizer(str(path)).get_vocab()
        if vocab is not None and this_vocab != vocab:
            raise WarmError(f"{init}: its tokenizer differs from {inits[0]}'s; all inits must share one tokenizer")
        vocab = this_vocab
        fingerprints[str(path.resolve())] = init_fingerprint(path)
    return fingerprints


def prepare_data(config: TrainConfig, tokenizer, run_dir: Path) -> tuple[PreferenceData, dict]:
    """Load, limit and corrupt the training pairs; save what is trained on beside the run."""
    data = load_preferences(config.data, tokenizer=tokenizer, prompt_key=config.prompt_key,
                            chosen_key=config.chosen_key, rejected_key=config.rejected_key, limit=config.limit)
    if config.corrupt > 0:
        data = corrupt_labels(data, config.corrupt, config.corrupt_seed)
        write_json(run_dir / "data" / "corruption.json", corruption_record(data))
    saved = save_preferences(data, run_dir / "data" / "train.jsonl.gz")
    source = Path(config.data)
    info = {
        "source": config.data,
        "source_sha256": sha256_file(source) if source.is_file() else None,
        "trained_on": str(saved),
        "n_pairs": len(data),
        "limit": config.limit,
        "corrupt": config.corrupt,
        "corrupt_seed": config.corrupt_seed,
        "columns": [config.prompt_key, config.chosen_key, config.rejected_key],
    }
    return data, info


def _remove_stale_temporaries(members_dir: Path) -> None:
    """A killed member leaves only its temporary directory (members are renamed into place when done)."""
    if members_dir.is_dir():
        for stale in members_dir.glob(".*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)


def run_training(config: TrainConfig, progress: bool = True) -> dict:
    """Train all members of the run described by `config`; return RUN/train_metrics.json's payload."""
    run_dir = Path(config.out)
    fingerprints = _check_inits(config.init)
    tokenizer = load_tokenizer(config.init[0])
    data, data_info = prepare_data(config, tokenizer, run_dir)
    training = {k: getattr(config, k) for k in ("epochs", "max_steps", "batch_size", "max_length", "warmup_ratio", "weight_decay")}
    training["precision"] = resolve_precision(config.precision, "cuda" if torch.cuda.is_available() else "cpu")
    plan = make_plan(config, fingerprints, data_info, training)

    plan_path = run_dir / "plan.json"
    if plan_path.exists():
        old = read_json(plan_path)
        if old.get("plan_hash") != plan["plan_hash"]:
            if not config.force:
                diffs = plan_differences(old, plan)
                raise WarmError(f"{plan_path}: the plan changed ({'; '.join(diffs[:4]) or 'details differ'}); pass --force to retrain changed members")
        else:
            plan["created"] = old.get("created", plan["created"])
    write_json(run_dir / "train_config.json", to_dict(config))
    write_json(plan_path, plan)

    _remove_stale_temporaries(run_dir / "members")
    pairs = tokenize_pairs(tokenizer, data.prompt, data.chosen, data.rejected, config.max_length)
    results: dict[str, dict] = {}
    overall = tqdm(plan["members"], desc="members", unit="member", disable=not progress)
    for member in overall:
        done = finished_member(run_dir, plan, member)
        if done is not None:
            overall.write(f"{member['name']}: finished earlier, reused")
        else:
            overall.write(f"{member['name']}: lr={member['learning_rate']:g} dropout={member['dropout']:g} seed={member['seed']}")
            done = train_member(run_dir, plan, member, pairs, data.margin, progress=progress)
        results[member["name"]] = done["metrics"]
        write_json(run_dir / "train_metrics.json", {"plan_hash": plan["plan_hash"], "n_truncated": pairs.truncated,
                                                    "n_sequences": len(pairs.sequences), "members": results})
    return read_json(run_dir / "train_metrics.json")
