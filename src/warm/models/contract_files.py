"""The input contract of a model directory: warm_contract.json, and the HF files that state it to other tools.

Every command that saves a reward model writes the contract (warm.data.contract) beside the weights and makes the
tokenizer and config say the same (truncation side, max length, raw reward); every command that scores one reads it
back here. A directory warm made before the contract existed is read as it was trained, with a warning; a foreign
directory by its own chat template.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from warm.data.contract import (
    CHAT_TEMPLATE, LEGACY_RENDERING, InputContract, adds_own_special_tokens, new_contract,
)
from warm.errors import WarmError
from warm.fileio import read_json, write_json
from warm.rundir import CONTRACT_FILE, INIT_FILE, MEMBER_FILE, MERGE_FILE, REGRESS_FILE, REWARD_MODEL_FILES, TrainRun



def training_contract(init_dir: str | Path, tokenizer, max_length: int) -> InputContract:
    """The contract of models trained now from `init_dir` at `max_length`: the init's, at that length.

    An init made before the contract (no warm_contract.json) is only a backbone with a head, so what is trained from
    it follows the contract, with the template its tokenizer has (or warm's, set on `tokenizer`).
    """
    contract, origin = read_contract(init_dir, tokenizer) if (Path(init_dir) / CONTRACT_FILE).is_file() else (None, None)
    if origin != "file":
        contract = new_contract(tokenizer, max_length)
    return contract.with_max_length(max_length)


def apply_to_save(tokenizer, model_config, contract: InputContract) -> None:
    """Make the files about to be saved state the contract (rules 4-5) for tools that only read HF files."""
    tokenizer.model_max_length = contract.max_length
    if contract.rendering == CHAT_TEMPLATE:
        tokenizer.truncation_side = contract.truncation_side
        tokenizer.init_kwargs["truncation_side"] = contract.truncation_side  # transformers saves init kwargs only
    if model_config is not None:
        model_config.problem_type = "regression"  # pipeline("text-classification") returns the raw reward


def write_contract(model_dir: str | Path, contract: InputContract) -> Path:
    return write_json(Path(model_dir) / CONTRACT_FILE, contract.to_json())


def stamp_copied_files(model_dir: str | Path, contract: InputContract) -> None:
    """The contract written into a directory whose tokenizer and config files were copied, not saved (a merge)."""
    model_dir = Path(model_dir)
    write_contract(model_dir, contract)
    tokenizer_config = model_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        values = read_json(tokenizer_config)
        values["model_max_length"] = contract.max_length
        if contract.rendering == CHAT_TEMPLATE:
            values["truncation_side"] = contract.truncation_side
        write_json(tokenizer_config, values)
    config = model_dir / "config.json"
    if config.is_file():
        write_json(config, {**read_json(config), "problem_type": "regression"})


def common_contract(model_dirs: Sequence[str | Path]) -> InputContract | None:
    """The one contract of models to be averaged (None when none of them has one: pre-contract members).

    Averaged weights only make sense between models that read the same inputs: any difference but the length is
    refused; different lengths give the shortest (every member was trained up to it) with a warning.
    """
    found = [(Path(d), Path(d) / CONTRACT_FILE) for d in model_dirs]
    contracts = [(d, InputContract.from_json(read_json(f), str(f)) if f.is_file() else None) for d, f in found]
    if all(c is None for _, c in contracts):
        return None
    missing = next((d for d, c in contracts if c is None), None)
    if missing is not None:
        raise WarmError(f"{missing}: no {CONTRACT_FILE}, unlike the other members (made by an older warm); "
                        "members must read their inputs the same way")
    first_dir, first = contracts[0]
    for directory, contract in contracts[1:]:
        if replace(contract, max_length=first.max_length) != first:
            raise WarmError(f"{directory / CONTRACT_FILE}: input contract differs from {first_dir / CONTRACT_FILE}; "
                            "members must read their inputs the same way")
    lengths = {c.max_length for _, c in contracts}
    if len(lengths) > 1:
        warnings.warn(f"members were trained at max lengths {sorted(lengths)}; the merge reads up to {min(lengths)}",
                      stacklevel=3)
    return replace(first, max_length=min(lengths))


def read_contract(model_dir: str | Path, tokenizer=None, *, max_length: int | None = None) -> tuple[InputContract, str]:
    """(contract, origin) of a model directory; origin is "file", "legacy" (warm-made, pre-contract) or "foreign".

    A foreign directory (no warm files) is read by the contract's rule with its own chat template; it must have one.
    """
    model_dir = Path(model_dir)
    path = model_dir / CONTRACT_FILE
    if path.is_file():
        return InputContract.from_json(read_json(path), str(path)), "file"
    if any((model_dir / name).is_file() for name in REWARD_MODEL_FILES):
        trained = legacy_max_length(model_dir)
        contract = InputContract(max_length=trained or max_length or 512, rendering=LEGACY_RENDERING,
                                 add_special_tokens=True, truncation_side="prompt-first", template="none")
        return contract, "legacy"
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise WarmError(f"{model_dir}: no {CONTRACT_FILE} and no chat template, so warm cannot know how the model reads a "
                        "(prompt, response); build it with `warm init`, or give its tokenizer a chat template")
    limit = _position_limit(model_dir, tokenizer)
    return InputContract(max_length=min(max_length or limit, limit), add_special_tokens=adds_own_special_tokens(tokenizer)), "foreign"


def legacy_max_length(model_dir: Path) -> int | None:
    """The max length a pre-contract warm directory was trained with, from the files beside it (None if unknown)."""
    candidates = [model_dir]
    merge = model_dir / MERGE_FILE
    if merge.is_file():
        members = read_json(merge).get("members") or []
        candidates = [Path(m) for m in members[:1]] + candidates
    for directory in candidates:
        # a member (RUN/members/NAME) or a checkpoint of one (RUN/members/NAME/checkpoints/step-N)
        member_runs = (TrainRun.of_member(directory), TrainRun.of_member(directory.parent.parent))
        for plan in (run.plan_file for run in member_runs):
            if (directory / MEMBER_FILE).is_file() and plan.is_file():
                value = read_json(plan).get("training", {}).get("max_length")
                if isinstance(value, int):
                    return value
        for name, keys in ((REGRESS_FILE, ("settings", "max_length")), (INIT_FILE, ("config", "max_length"))):
            if (directory / name).is_file():
                value = read_json(directory / name)
                for key in keys:
                    value = value.get(key) if isinstance(value, dict) else None
                if isinstance(value, int):
                    return value
    return None


def _position_limit(model_dir: Path, tokenizer) -> int:
    limits = [int(tokenizer.model_max_length)] if 0 < getattr(tokenizer, "model_max_length", 0) < 10**7 else []
    config = model_dir / "config.json"
    if config.is_file():
        positions = read_json(config).get("max_position_embeddings")
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
    return min(limits) if limits else 512


_LEGACY_WARNED: set[str] = set()


def warn_legacy(model_dir: str | Path, contract: InputContract) -> None:
    """Once per directory: a pre-contract model is scored with the encoding it was trained with, and says so."""
    key = str(Path(model_dir).resolve())
    if key not in _LEGACY_WARNED:
        _LEGACY_WARNED.add(key)
        warnings.warn(f"{model_dir}: no {CONTRACT_FILE} (made before warm's input contract); scored as it was trained: "
                      f"prompt and response as the tokenizer's two segments, max length {contract.max_length}",
                      stacklevel=3)
