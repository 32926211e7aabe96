"""How the unfinished members of a run are executed: one after another in this process (`run_local`, the default)
or as Ray tasks (warm.train.ray_launcher). Both receive the run the driver prepared once and call `done` as each
member finishes; they write the same directory layout and resume the same way (warm.train.launcher).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from warm.data.tokenize import TokenizedPairs
from warm.train.member import train_member


@dataclass(frozen=True)
class PreparedRun:
    """What every member's training needs, prepared once by the driver."""

    run_dir: Path
    plan: dict
    pairs: TokenizedPairs
    margins: list[float] | None


# Train `pending` members of `run`; call `done(member, warm_member.json payload)` as each one finishes.
MemberExecutor = Callable[[PreparedRun, list[dict], Callable[[dict, dict], None], bool], None]


def describe(member: dict) -> str:
    return f"{member['name']}: lr={member['learning_rate']:g} dropout={member['dropout']:g} seed={member['seed']}"


def run_local(run: PreparedRun, pending: list[dict], done: Callable[[dict, dict], None], progress: bool) -> None:
    """The local launcher: members one after another in this process."""
    bar = tqdm(pending, desc="members", unit="member", disable=not progress)
    for member in bar:
        bar.write(describe(member))
        done(member, train_member(run.run_dir, run.plan, member, run.pairs, run.margins, progress=progress))
