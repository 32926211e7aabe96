"""`warm train`: prepare data once, write the plan, train every unfinished member.

Order of work, each step leaving a file behind so a rerun picks up where it stopped:
  RUN/train_config.json   the command's config
  RUN/data/train.jsonl.gz the pairs actually trained on (after --limit and --corrupt), with `corrupted` marks
  RUN/data/corruption.json which pairs were swapped (when --corrupt > 0)
  RUN/plan.json           the members and everything that decides what they learn
  RUN/members/mNN/        one HF directory (or PEFT adapter) per finished member, with warm_member.json
  RUN/train_metrics.json  per-member metrics, rewritten after each member

Everything above is shared by the launchers; an executor (warm.train.executors) only decides how the unfinished
members run: one after another in this process (`run_local`, the default) or as Ray tasks (warm.train.ray_launcher).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm.auto import tqdm

from warm.config import TrainConfig, to_dict
from warm.data.contract import InputContract, PairEncoder
from warm.models.contract_files import training_contract
from warm.data.corrupt import corrupt_labels, corruption_record
from warm.data.formats import PreferenceData, load_preferences, save_preferences
from warm.data.tokenize import tokenize_pairs
from warm.errors import WarmError
from warm.fileio import read_json, sha256_file, write_json
from warm.models.init import init_fingerprint
from warm.models.loading import load_tokenizer
from warm.models.runtime import default_device, resolve_precision
from warm.train.executors import MemberExecutor, PreparedRun, run_local
from warm.train.member import finished_member, lora_settings
from warm.rundir import TrainRun, refuse_changed
from warm.train.plan import TrainingSettings, make_plan, plan_differences

LAUNCHERS = ("local", "ray")


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


def prepare_data(config: TrainConfig, run: TrainRun) -> tuple[PreferenceData, dict]:
    """Load, limit and corrupt the training pairs; save what is trained on beside the run."""
    data = load_preferences(config.data, prompt_key=config.prompt_key,
                            chosen_key=config.chosen_key, rejected_key=config.rejected_key, limit=config.limit)
    if config.corrupt > 0:
        data = corrupt_labels(data, config.corrupt, config.corrupt_seed)
        write_json(run.corruption_file, corruption_record(data))
    saved = save_preferences(data, run.data_file)
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


def training_settings(config: TrainConfig, contract: InputContract) -> TrainingSettings:
    """The plan's training section for this run. Precision is resolved where the driver runs: with --launcher ray on
    GPU workers and a CPU driver, pass --precision explicitly."""
    return TrainingSettings.from_config(config, contract.to_json(), resolve_precision(config.precision,
                                                                                     default_device()),
                                        lora_settings(config))


def prepare_run(config: TrainConfig) -> PreparedRun:
    """Check the inits, save the data, write (or check) the plan and tokenise the pairs once."""
    run_dir = Path(config.out)
    layout = TrainRun(run_dir)
    fingerprints = _check_inits(config.init)
    encoder = training_encoder(config.init, config.max_length)
    data, data_info = prepare_data(config, layout)
    plan = make_plan(config, fingerprints, data_info, training_settings(config, encoder.contract))

    plan_path = layout.plan_file
    if plan_path.exists():
        old = read_json(plan_path)
        if old.get("plan_hash") != plan["plan_hash"]:
            if not config.force:
                diffs = plan_differences(old, plan)
                refuse_changed(plan_path, diffs or ["details"], made="the plan changed in",
                               advice="pass --force to retrain changed members")
        else:
            plan["created"] = old.get("created", plan["created"])
    write_json(layout.config_file, to_dict(config))
    write_json(plan_path, plan)

    _remove_stale_temporaries(layout.members_dir)
    pairs = tokenize_pairs(encoder, data)
    return PreparedRun(run_dir=run_dir, plan=plan, pairs=pairs, margins=data.margin)


def training_encoder(inits: tuple[str, ...], max_length: int) -> PairEncoder:
    """The inits' tokenizer and input contract at the training length: what every member reads and is saved with.

    Inits of a Baklava run must agree on it (warm.models.contract_files.training_contract).
    """
    encoders = []
    for path in inits:
        tokenizer = load_tokenizer(path)
        encoders.append(PairEncoder(tokenizer, training_contract(path, tokenizer, max_length)))
    for path, encoder in zip(inits[1:], encoders[1:]):
        if encoder.signature != encoders[0].signature:
            raise WarmError(f"{path}: its input contract or chat template differs from {inits[0]}'s; members of one "
                            "run must read their inputs the same way")
    return encoders[0]


def executor_for(config: TrainConfig) -> MemberExecutor:
    if config.launcher == "local":
        return run_local
    if config.launcher == "ray":
        from warm.train.ray_launcher import ray_executor

        return ray_executor(config.ray_address, gpus_per_member=config.gpus_per_member,
                            cpus_per_member=config.cpus_per_member)
    raise WarmError(f"--launcher {config.launcher!r}: expected one of {', '.join(LAUNCHERS)}")


def run_training(config: TrainConfig, progress: bool = True, executor: MemberExecutor | None = None) -> dict:
    """Train all members of the run described by `config`; return RUN/train_metrics.json's payload.

    Members that finished earlier with the same plan entry are reused; the others go to `executor` (by default
    the one --launcher names). RUN/train_metrics.json is rewritten, in plan order, as each member finishes.
    """
    executor = executor or executor_for(config)  # first, so a bad --launcher fails before any work
    run = prepare_run(config)
    order = [member["name"] for member in run.plan["members"]]
    results: dict[str, dict] = {}

    def done(member: dict, payload: dict) -> None:
        results[member["name"]] = payload["metrics"]
        write_json(TrainRun(run.run_dir).metrics_file, {
            "plan_hash": run.plan["plan_hash"],
            "n_truncated": run.pairs.truncated,
            "n_sequences": len(run.pairs.sequences),
            "members": {name: results[name] for name in order if name in results},
        })

    pending = []
    for member in run.plan["members"]:
        finished = finished_member(run.run_dir, run.plan, member)
        if finished is None:
            pending.append(member)
        else:
            tqdm.write(f"{member['name']}: finished earlier, reused")
            done(member, finished)
    executor(run, pending, done, progress)
    return read_json(TrainRun(run.run_dir).metrics_file)
